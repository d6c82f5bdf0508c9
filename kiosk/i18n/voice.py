"""Spoken calls on the hall display, built from short recorded clips ("ticket", letters, numbers,
"please go to counter") played one after another in the ticket's language.

Clips live in kiosk/static/sounds/<lang>/<name>.wav, all in one format (mono WAV). The set shipped
for Arabic and English is a placeholder made offline with espeak-ng:

    .venv/bin/python -m kiosk.i18n.voice --lang ar en

To use recorded human voices, drop WAV files with the same names into the language's folder (the
list is `clip_names()`; docs/screens.md describes the recording). Sorani (ckb) has no synthetic
voice, so its folder is an empty slot until recordings exist; until then a Sorani ticket's call
plays only the chime (the number is still shown on the display).

Number words are composed per language: Arabic says the units before the tens with "and"
(42 = two and forty), Sorani says the tens first with "and" (forty and two), English says tens
then units (forty two). Numbers of 1000 and more are read digit by digit.
"""
from __future__ import annotations

import argparse
import array
import logging
import math
import re
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

log = logging.getLogger(__name__)

SOUNDS = Path(__file__).resolve().parent.parent / "static" / "sounds"
CHIME = "chime"
RATE = 11025          # Hz: enough for speech, and a clip stays a few kilobytes
SAMPLE_WIDTH = 1      # 8-bit unsigned PCM, which every browser decodes
LETTERS = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
NUMBERS = list(range(0, 20)) + list(range(20, 100, 10)) + list(range(100, 1000, 100))

# What each clip says, per language, for the placeholder voice (espeak-ng reads digits as words).
PHRASES = {
    "en": {"ticket": "Ticket", "counter": "please go to counter", "and": "and"},
    "ar": {"ticket": "التذكرة رقم", "counter": "تفضل إلى الشباك", "and": "وَ"},
    "ckb": {"ticket": "بلیتی ژمارە", "counter": "تکایە بڕۆ بۆ پەنجەرەی", "and": "و"},
}
AR_LETTERS = dict(zip(LETTERS, ["إيه", "بي", "سي", "دي", "إي", "إف", "جي", "إتش", "آي", "جيه", "كيه",
                                "إل", "إم", "إن", "أو", "بي", "كيو", "آر", "إس", "تي", "يو", "في",
                                "دبليو", "إكس", "واي", "زد"]))
ESPEAK_VOICES = {"en": "en-gb", "ar": "ar"}


def clip_names() -> list[str]:
    """Every clip a language needs, without the .wav suffix."""
    return ["ticket", "counter", "and"] + [f"letter_{x}" for x in LETTERS] + [f"n{n}" for n in NUMBERS]


def number_clips(n: int, lang: str) -> list[str]:
    """Clip names that say the number `n` in `lang`."""
    if n < 0:
        raise ValueError("negative numbers are never announced")
    if n >= 1000:
        return [f"n{d}" for d in str(n)]
    if n == 0:
        return ["n0"]
    hundreds, rest = divmod(n, 100)
    parts = [f"n{hundreds * 100}"] if hundreds else []
    if rest:
        if rest < 20:
            words = [f"n{rest}"]
        else:
            tens, units = divmod(rest, 10)
            if units == 0:
                words = [f"n{tens * 10}"]
            elif lang == "ar":
                words = [f"n{units}", "and", f"n{tens * 10}"]
            elif lang == "ckb":
                words = [f"n{tens * 10}", "and", f"n{units}"]
            else:
                words = [f"n{tens * 10}", f"n{units}"]
        if hundreds and lang in ("ar", "ckb"):
            parts.append("and")
        parts += words
    return parts


def code_clips(code: str, lang: str) -> list[str]:
    """Clip names for a ticket number or counter name: letters one by one, digit runs as numbers."""
    out = []
    for token in re.findall(r"[A-Za-z]|[0-9]+", code):
        out += [f"letter_{token.upper()}"] if token.isalpha() else number_clips(int(token), lang)
    return out


def has_voice(lang: str, sounds: Path = SOUNDS) -> bool:
    """Whether every clip of a language is present (a partial set is not used, it would mumble)."""
    folder = sounds / lang
    return folder.is_dir() and all((folder / f"{name}.wav").is_file() for name in clip_names())


def announcement(number: str, counter: str, lang: str, sounds: Path = SOUNDS) -> list[str]:
    """Static paths of the clips that call `number` to `counter`: chime, then the words if the
    ticket's language has a voice; only the chime otherwise."""
    playlist = [f"sounds/{CHIME}.wav"]
    if lang in PHRASES and has_voice(lang, sounds):
        words = ["ticket", *code_clips(number, lang), "counter", *code_clips(str(counter), lang)]
        playlist += [f"sounds/{lang}/{name}.wav" for name in words]
    return playlist


# -- generating the placeholder set ----------------------------------------------------------------

def _read_pcm16(path: Path) -> tuple[array.array, int]:
    """Samples and rate of a 16-bit mono WAV."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path}: expected 16-bit mono, got {w.getsampwidth() * 8}-bit {w.getnchannels()} channel(s)")
        samples = array.array("h")
        samples.frombytes(w.readframes(w.getnframes()))
        if sys.byteorder == "big":
            samples.byteswap()
        return samples, w.getframerate()


def _trim(samples: array.array, rate: int, threshold: int = 400, margin_s: float = 0.03) -> array.array:
    """Cut leading and trailing silence, keeping a short margin."""
    loud = [i for i, s in enumerate(samples) if abs(s) > threshold]
    if not loud:
        return samples[:0]
    margin = int(rate * margin_s)
    return samples[max(0, loud[0] - margin): min(len(samples), loud[-1] + margin)]


def _resample(samples: array.array, rate_in: int, rate_out: int) -> list[float]:
    """Linear-interpolation resampling with a small averaging filter against aliasing."""
    if rate_in == rate_out:
        return [float(s) for s in samples]
    step = rate_in / rate_out
    width = max(1, int(step))
    out = []
    n = len(samples)
    for i in range(int(n / step)):
        start = int(i * step)
        window = samples[start:start + width] or samples[start:start + 1]
        out.append(sum(window) / len(window))
    return out


def write_u8(path: Path, samples: list[float]) -> None:
    """Write 16-bit-range samples as an 8-bit unsigned mono WAV at RATE."""
    data = bytes(max(0, min(255, int(round(s / 256.0)) + 128)) for s in samples)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(SAMPLE_WIDTH)
        w.setframerate(RATE)
        w.writeframes(data)


def make_chime(path: Path) -> None:
    """A two-tone chime (E5 then C5) with a soft decay, so people look up before the words."""
    samples: list[float] = []
    for freq, length in ((659.25, 0.35), (523.25, 0.55)):
        count = int(RATE * length)
        for i in range(count):
            t = i / RATE
            envelope = min(1.0, i / (RATE * 0.01)) * math.exp(-4.0 * t)
            tone = math.sin(2 * math.pi * freq * t) + 0.3 * math.sin(4 * math.pi * freq * t)
            samples.append(16000 * envelope * tone / 1.3)
    write_u8(path, samples)


def clip_text(name: str, lang: str) -> str:
    """What the placeholder voice says for a clip."""
    if name.startswith("letter_"):
        letter = name.split("_", 1)[1]
        return AR_LETTERS[letter] if lang == "ar" else letter
    if name.startswith("n") and name[1:].isdigit():
        return name[1:]
    return PHRASES[lang][name]


def generate(lang: str, sounds: Path = SOUNDS, espeak: str = "espeak-ng") -> int:
    """(Re)make a language's placeholder clips with espeak-ng; returns how many were written."""
    if lang not in ESPEAK_VOICES:
        raise ValueError(f"no synthetic voice for {lang!r}: record clips instead (see kiosk/static/sounds/README.md)")
    if shutil.which(espeak) is None:
        raise RuntimeError(f"{espeak} is not installed (Debian package espeak-ng)")
    written = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in clip_names():
            raw = Path(tmp) / f"{name}.wav"
            subprocess.run([espeak, "-v", ESPEAK_VOICES[lang], "-s", "165", "-w", str(raw), clip_text(name, lang)],
                           check=True, capture_output=True, timeout=30)
            samples, rate = _read_pcm16(raw)
            write_u8(sounds / lang / f"{name}.wav", _resample(_trim(samples, rate), rate, RATE))
            written += 1
    return written


def main(argv: list[str]) -> int:
    """Command line: regenerate the chime and the placeholder voices."""
    parser = argparse.ArgumentParser(description="Regenerate the hall display's chime and placeholder voice clips.")
    parser.add_argument("--lang", nargs="+", default=sorted(ESPEAK_VOICES), choices=sorted(ESPEAK_VOICES))
    parser.add_argument("--out", type=Path, default=SOUNDS, help="sounds folder (default: kiosk/static/sounds)")
    args = parser.parse_args(argv)
    make_chime(args.out / f"{CHIME}.wav")
    for lang in args.lang:
        count = generate(lang, args.out)
        print(f"{lang}: {count} clips written to {args.out / lang}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
