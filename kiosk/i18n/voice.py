"""Spoken calls on the hall display, built from short clips ("ticket", letters, numbers, "please go
to counter") played one after another in the ticket's language.

A language's clips come from a **voice pack** installed in the data directory
(`DATA/voices/<lang>/`, recorded by the ministry: `flask --app kiosk voice install`), or else from
the placeholder set shipped in kiosk/static/sounds/<lang>/, synthesised offline with espeak-ng:

    .venv/bin/python -m kiosk.i18n.voice --lang ar ckb en

espeak-ng has no Sorani voice; the Sorani placeholder is its Kurdish (Kurmanji) voice reading
Sorani words written in the Kurdish Latin alphabet, which Kurmanji shares ("bilîtî jimare", "çil û
dû"): understandable, with a northern accent, until a recorded pack is installed. A call is never
silent: when the ticket's language has no complete voice, the centre's default language speaks it
(then any language with a voice), and the chime always comes first. docs/voice-packs.md describes
the pack format and the recording.

Number words are composed per language: Arabic says the units before the tens with "and"
(42 = two and forty), Sorani says the tens first with "and" (forty and two), English says tens
then units (forty two). Numbers of 1000 and more are read digit by digit.
"""
from __future__ import annotations

import argparse
import array
import logging
import math
import os
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
# Sorani for espeak-ng's Kurdish voice, in the Kurdish Latin (Hawar) alphabet it reads.
CKB_LATIN = {
    "ticket": "bilîtî jimare", "counter": "tkaye biro bo pencerey", "and": "û",
    **{f"n{n}": word for n, word in (
        (0, "sifir"), (1, "yek"), (2, "dû"), (3, "sê"), (4, "çwar"), (5, "pênc"), (6, "şeş"), (7, "hewt"),
        (8, "heşt"), (9, "no"), (10, "de"), (11, "yanze"), (12, "dwanze"), (13, "sêzde"), (14, "çwarde"),
        (15, "panze"), (16, "şanze"), (17, "hevde"), (18, "hejde"), (19, "nozde"), (20, "bîst"),
        (30, "sî"), (40, "çil"), (50, "penca"), (60, "şest"), (70, "hefta"), (80, "heşta"),
        (90, "newed"), (100, "sed"), (200, "dused"), (300, "sêsed"), (400, "çwarsed"),
        (500, "pêncsed"), (600, "şeşsed"), (700, "hewtsed"), (800, "heştsed"), (900, "nosed"))},
    # the letters of ticket numbers are Latin: their English names, as a Sorani speaker says them
    **{f"letter_{x}": name for x, name in zip(LETTERS, [
        "ey", "bî", "sî", "dî", "î", "ef", "cî", "eyç", "ay", "cey", "key", "el", "em", "en", "o", "pî",
        "kyû", "ar", "es", "tî", "yû", "vî", "dabilyû", "eks", "way", "zed"])},
}
ESPEAK_VOICES = {"en": "en-gb", "ar": "ar", "ckb": "ku"}


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


def words(number: str, counter: str, lang: str) -> list[str]:
    """The clip names of one call: "ticket", the number, "please go to counter", the counter."""
    return ["ticket", *code_clips(number, lang), "counter", *code_clips(str(counter), lang)]


def announcement(number: str, counter: str, lang: str, sounds: Path = SOUNDS) -> list[str]:
    """Static paths of the shipped clips that call `number` to `counter`: chime, then the words if
    the ticket's language has a voice; only the chime otherwise (the display uses `Voices`, which
    also knows installed packs and falls back to another language)."""
    playlist = [f"sounds/{CHIME}.wav"]
    if lang in PHRASES and has_voice(lang, sounds):
        playlist += [f"sounds/{lang}/{name}.wav" for name in words(number, counter, lang)]
    return playlist


class Voices:
    """Which folder speaks each language: an installed pack (DATA/voices/<lang>/), else the shipped set.

    Looked up again whenever the packs' folder changes (a pack installed while the kiosk runs is
    used from the next call on), otherwise answered from memory.
    """

    def __init__(self, installed: Path, shipped: Path = SOUNDS):
        """`installed`: the data directory's voices folder (it need not exist)."""
        self.installed = Path(installed)
        self.shipped = Path(shipped)
        self._stamp: object = None
        self._folders: dict[str, tuple[Path, str]] = {}

    def _refresh(self) -> None:
        try:
            stamp = self.installed.stat().st_mtime_ns, tuple(
                (p.name, p.stat().st_mtime_ns) for p in sorted(self.installed.iterdir()) if p.is_dir())
        except OSError:
            stamp = None
        if stamp == self._stamp and self._folders:
            return
        folders = {}
        for lang in PHRASES:
            for root, kind in ((self.installed, "installed"), (self.shipped, "shipped")):
                if has_voice(lang, root):
                    version = f"{kind}-{(root / lang).stat().st_mtime_ns:x}"
                    folders[lang] = (root / lang, version)
                    break
        self._stamp, self._folders = stamp, folders

    def source(self, lang: str) -> tuple[Path, str] | None:
        """(folder, version) of the voice that speaks `lang`, or None."""
        self._refresh()
        return self._folders.get(lang)

    def speaker(self, lang: str, fallbacks: list[str]) -> str | None:
        """The language whose voice calls a ticket of `lang`: its own, else the first fallback with one."""
        self._refresh()
        return next((x for x in [lang, *fallbacks] if x in self._folders), None)

    def calls(self, number: str, counter: str, lang: str, fallbacks: list[str]) -> tuple[str | None, list[str]]:
        """(speaking language, clip names) of one call; no clips when no language has a voice."""
        speaker = self.speaker(lang, fallbacks)
        return speaker, (words(number, counter, speaker) if speaker else [])


# -- voice packs ----------------------------------------------------------------------------------

MIN_RATE, MAX_RATE = 8000, 48000
MAX_CLIP_S = 4.0
SILENCE_PEAK = 0.02   # of full scale: a clip whose loudest sample stays below this is silence


def clip_problem(path: Path) -> str | None:
    """What is wrong with one clip of a pack (format, length, silence), or None."""
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            data = w.readframes(frames)
    except (wave.Error, EOFError, OSError) as exc:
        return f"not a PCM WAV file ({exc})"
    if channels != 1:
        return f"{channels} channels; clips are mono"
    if width not in (1, 2):
        return f"{width * 8}-bit samples; use 8- or 16-bit PCM"
    if not MIN_RATE <= rate <= MAX_RATE:
        return f"sample rate {rate} Hz; use {MIN_RATE} to {MAX_RATE} Hz"
    length = frames / rate
    if not 0.05 <= length <= MAX_CLIP_S:
        return f"{length:.2f} s long; a clip lasts 0.05 to {MAX_CLIP_S:.0f} s (trim the silence)"
    if peak(data, width) < SILENCE_PEAK:
        return "silent (its loudest sample is below 2% of full scale)"
    return None


def peak(data: bytes, width: int) -> float:
    """Loudest sample of PCM data as a fraction of full scale (8-bit unsigned or 16-bit signed)."""
    if width == 1:
        return max((abs(b - 128) for b in data), default=0) / 128
    samples = array.array("h")
    samples.frombytes(data[: len(data) - len(data) % 2])
    if sys.byteorder == "big":
        samples.byteswap()
    return max((abs(x) for x in samples), default=0) / 32768


def pack_problems(folder: Path) -> list[str]:
    """Everything wrong with a pack folder: missing clips, bad clips, unknown files."""
    problems = []
    expected = set(clip_names())
    for name in clip_names():
        path = folder / f"{name}.wav"
        if not path.is_file():
            problems.append(f"{name}.wav is missing")
        elif (problem := clip_problem(path)) is not None:
            problems.append(f"{name}.wav: {problem}")
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.name not in PACK_EXTRA and (path.suffix != ".wav" or path.stem not in expected):
            problems.append(f"{path.name}: not a clip of a voice pack")
    return problems


PACK_EXTRA = {"voice.toml", "README.md", "README.txt", "LICENSE", "LICENSE.txt"}


def install_pack(source: Path, lang: str, voices_dir: Path) -> int:
    """Check a pack (a folder or a .zip of one) and install it as `lang`'s voice; returns its clips.

    Nothing is changed unless every clip passes; the installed folder is replaced in one rename.
    """
    import zipfile
    if lang not in PHRASES:
        raise ValueError(f"unknown language {lang!r}: one of {', '.join(sorted(PHRASES))}")
    with tempfile.TemporaryDirectory(dir=_ensure(voices_dir), prefix=".incoming-") as tmp:
        staged = Path(tmp) / lang
        if source.is_dir():
            shutil.copytree(source, staged)
        elif zipfile.is_zipfile(source):
            with zipfile.ZipFile(source) as archive:
                members = [m for m in archive.infolist() if not m.is_dir()]
                staged.mkdir()
                for member in members:
                    name = Path(member.filename).name  # a pack is flat; folders inside the zip are ignored
                    if name.startswith(".") or not name:
                        continue
                    with archive.open(member) as src, open(staged / name, "wb") as out:
                        shutil.copyfileobj(src, out, 1 << 16)
        else:
            raise ValueError(f"{source} is neither a folder nor a .zip file")
        problems = pack_problems(staged)
        if problems:
            raise ValueError("the pack was not installed:\n  " + "\n  ".join(problems))
        target = voices_dir / lang
        old = Path(tmp) / "previous"
        if target.exists():
            target.rename(old)
        staged.rename(target)
        os.utime(voices_dir)  # a running kiosk notices the change at its next call
    return len(clip_names())


def remove_pack(lang: str, voices_dir: Path) -> bool:
    """Remove an installed pack (the shipped voice speaks again); False when none was installed."""
    target = voices_dir / lang
    if not target.is_dir():
        return False
    shutil.rmtree(target)
    os.utime(voices_dir)
    return True


def _ensure(folder: Path) -> Path:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


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
    if lang == "ckb":
        return CKB_LATIN[name]
    if name.startswith("letter_"):
        letter = name.split("_", 1)[1]
        return AR_LETTERS[letter] if lang == "ar" else letter
    if name.startswith("n") and name[1:].isdigit():
        return name[1:]
    return PHRASES[lang][name]


def generate(lang: str, sounds: Path = SOUNDS, espeak: str = "espeak-ng") -> int:
    """(Re)make a language's placeholder clips with espeak-ng; returns how many were written."""
    if lang not in ESPEAK_VOICES:
        raise ValueError(f"no synthetic voice for {lang!r}: record a voice pack instead (docs/voice-packs.md)")
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
