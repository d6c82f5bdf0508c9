"""Spoken-call composition and clips, the Chromium kiosk launcher, and static file serving."""
from __future__ import annotations

import json
import wave

import pytest

from kiosk.i18n import voice
from kiosk.launch import BASE_FLAGS, command_line, launch_command, policy


# -- voice -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,lang,words", [
    (42, "ar", ["n2", "and", "n40"]),
    (42, "ckb", ["n40", "and", "n2"]),
    (42, "en", ["n40", "n2"]),
    (7, "ar", ["n7"]),
    (15, "en", ["n15"]),
    (30, "ar", ["n30"]),
    (142, "ar", ["n100", "and", "n2", "and", "n40"]),
    (142, "en", ["n100", "n40", "n2"]),
    (300, "ckb", ["n300"]),
    (1234, "en", ["n1", "n2", "n3", "n4"]),
    (0, "en", ["n0"]),
])
def test_number_words_follow_each_language(n, lang, words):
    """Arabic says units before tens, Sorani and English tens first; Arabic and Sorani join with "and"."""
    assert voice.number_clips(n, lang) == words


def test_announcement_of_a_call():
    """Chime, "ticket", the letter and number, "please go to counter", the counter."""
    assert voice.announcement("A-042", "3", "ar") == [
        "sounds/chime.wav", "sounds/ar/ticket.wav", "sounds/ar/letter_A.wav", "sounds/ar/n2.wav",
        "sounds/ar/and.wav", "sounds/ar/n40.wav", "sounds/ar/counter.wav", "sounds/ar/n3.wav"]


def test_an_incomplete_voice_is_not_used(tmp_path):
    """A half-recorded language would mumble: only a complete set of clips speaks."""
    for name in voice.clip_names()[:-1]:
        voice.write_u8(tmp_path / "ckb" / f"{name}.wav", [0.0] * 10)
    assert voice.announcement("B-007", "2", "ckb", sounds=tmp_path) == ["sounds/chime.wav"]  # one missing
    voice.write_u8(tmp_path / "ckb" / f"{voice.clip_names()[-1]}.wav", [0.0] * 10)
    assert voice.announcement("B-007", "2", "ckb", sounds=tmp_path)[1:] == [
        "sounds/ckb/ticket.wav", "sounds/ckb/letter_B.wav", "sounds/ckb/n7.wav", "sounds/ckb/counter.wav",
        "sounds/ckb/n2.wav"]


@pytest.mark.parametrize("lang", ["ar", "ckb", "en"])
def test_shipped_clips_are_complete_small_and_alike(lang):
    """Every clip exists, all share one format (so they play back to back), speak, and stay small."""
    assert voice.has_voice(lang)
    total = 0
    for name in voice.clip_names():
        path = voice.SOUNDS / lang / f"{name}.wav"
        with wave.open(str(path)) as clip:
            assert (clip.getnchannels(), clip.getsampwidth(), clip.getframerate()) == (1, 1, voice.RATE), name
            assert 0.05 < clip.getnframes() / clip.getframerate() < 3.0, name
        assert voice.clip_problem(path) is None, name
        total += path.stat().st_size
    assert total < 800_000


def test_sorani_placeholder_reads_kurdish_latin_script():
    """espeak-ng's Kurdish voice is given Sorani words in the Latin alphabet, one per clip."""
    assert voice.ESPEAK_VOICES["ckb"] == "ku"
    assert voice.clip_text("n40", "ckb") == "çil" and voice.clip_text("and", "ckb") == "û"
    assert {voice.clip_text(name, "ckb") for name in voice.clip_names()} >= {"yek", "dû", "sed", "bilîtî jimare"}
    assert not any("\u0600" <= ch <= "\u06ff" for name in voice.clip_names() for ch in voice.clip_text(name, "ckb"))


def make_pack(folder, *, source="en", skip=(), silent=(), stereo=()):
    """A pack made from the shipped clips of `source`, with faults on purpose."""
    folder.mkdir(parents=True)
    for name in voice.clip_names():
        if name in skip:
            continue
        if name in silent:
            voice.write_u8(folder / f"{name}.wav", [0.0] * 2000)
        elif name in stereo:
            with wave.open(str(folder / f"{name}.wav"), "wb") as w:
                w.setnchannels(2)
                w.setsampwidth(2)
                w.setframerate(16000)
                w.writeframes(b"\x00\x40" * 4000)
        else:
            (folder / f"{name}.wav").write_bytes((voice.SOUNDS / source / f"{name}.wav").read_bytes())
    (folder / "voice.toml").write_text('language = "ckb"\nspeaker = "test"\n')
    return folder


def test_a_pack_is_installed_whole_or_not_at_all(tmp_path):
    """Every problem is listed at once and nothing changes; a good pack then replaces the voice."""
    voices_dir = tmp_path / "voices"
    voices = voice.Voices(voices_dir)
    assert voices.source("ckb")[0] == voice.SOUNDS / "ckb"
    bad = make_pack(tmp_path / "bad", skip={"n7"}, silent={"n9"}, stereo={"letter_C"})
    (bad / "notes.mp3").write_bytes(b"x")
    with pytest.raises(ValueError) as refused:
        voice.install_pack(bad, "ckb", voices_dir)
    message = str(refused.value)
    for expected in ("n7.wav is missing", "n9.wav: silent", "letter_C.wav: 2 channels", "notes.mp3: not a clip"):
        assert expected in message
    assert not (voices_dir / "ckb").exists() and voices.source("ckb")[0] == voice.SOUNDS / "ckb"
    good = make_pack(tmp_path / "good")
    assert voice.install_pack(good, "ckb", voices_dir) == len(voice.clip_names())
    folder, version = voices.source("ckb")
    assert folder == voices_dir / "ckb" and version.startswith("installed")
    assert [p.name for p in voices_dir.iterdir()] == ["ckb"]  # nothing staged is left behind
    assert voice.remove_pack("ckb", voices_dir) and voices.source("ckb")[0] == voice.SOUNDS / "ckb"
    assert not voice.remove_pack("ckb", voices_dir)


def test_a_pack_may_come_as_a_zip(tmp_path):
    """The usual way a recording studio delivers: a zip (a folder inside it is fine)."""
    import zipfile
    pack = make_pack(tmp_path / "pack")
    archive = tmp_path / "sorani-voice.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in pack.iterdir():
            z.write(path, f"sorani-voice/{path.name}")
    voice.install_pack(archive, "ckb", tmp_path / "voices")
    assert voice.has_voice("ckb", tmp_path / "voices")
    with pytest.raises(ValueError, match="neither a folder nor a .zip"):
        voice.install_pack(pack / "voice.toml", "ckb", tmp_path / "voices")
    with pytest.raises(ValueError, match="unknown language"):
        voice.install_pack(pack, "fr", tmp_path / "voices")


def test_a_language_without_a_voice_is_spoken_by_the_fallback(tmp_path):
    """Never silent: the centre's default language speaks a call whose language has no voice."""
    shipped = tmp_path / "shipped"
    make_pack(shipped / "ar", source="ar")
    voices = voice.Voices(tmp_path / "voices", shipped=shipped)
    assert voices.calls("A-001", "2", "ckb", ["ar", "ar", "ckb", "en"]) == (
        "ar", ["ticket", "letter_A", "n1", "counter", "n2"])
    assert voices.calls("A-001", "2", "ckb", []) == (None, [])


def test_voice_commands(app, tmp_path):
    """flask --app kiosk voice list | install | remove."""
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["voice", "list"])
    assert listed.exit_code == 0 and "ckb: shipped placeholder" in listed.output
    refused = runner.invoke(args=["voice", "install", str(make_pack(tmp_path / "bad", skip={"and"})), "--lang", "ckb"])
    assert refused.exit_code == 1 and "and.wav is missing" in refused.output
    done = runner.invoke(args=["voice", "install", str(make_pack(tmp_path / "good")), "--lang", "ckb"])
    assert done.exit_code == 0 and "66 clips installed" in done.output
    assert "ckb: recorded pack" in runner.invoke(args=["voice", "list"]).output
    assert runner.invoke(args=["voice", "remove", "--lang", "ckb"]).exit_code == 0
    assert runner.invoke(args=["voice", "remove", "--lang", "ckb"]).exit_code == 1


def test_clips_are_served_from_the_voice_in_use(app, client, tmp_path):
    """The display fetches clips from the pack in use; other names are 404; versioned URLs cache."""
    with app.app_context():
        from kiosk.web.display import clip_urls
        urls = clip_urls("B-012", "3", "ckb")
    assert urls[0].startswith("/static/sounds/chime.wav?v=") and "/display/sounds/ckb/ticket.wav?v=" in urls[1]
    response = client.get(urls[1])
    assert response.status_code == 200 and response.mimetype == "audio/wav"
    assert "immutable" in response.headers["Cache-Control"]
    assert response.data == (voice.SOUNDS / "ckb" / "ticket.wav").read_bytes()
    response.close()
    assert client.get("/display/sounds/ckb/secret.wav").status_code == 404
    assert client.get("/display/sounds/fr/ticket.wav").status_code == 404


def test_chime_generation(tmp_path):
    """The chime is made from code, not downloaded."""
    voice.make_chime(tmp_path / "chime.wav")
    with wave.open(str(tmp_path / "chime.wav")) as clip:
        assert clip.getframerate() == voice.RATE and 0.8 < clip.getnframes() / voice.RATE < 1.0


# -- kiosk launcher --------------------------------------------------------------------------------

def test_command_line_for_each_screen():
    """Kiosk mode with an explicit window size (without a window manager --kiosk alone does not fill)."""
    argv = command_line("kiosk", "http://127.0.0.1:8080/kiosk", browser="chromium")
    assert argv[0] == "chromium" and argv[-1] == "http://127.0.0.1:8080/kiosk"
    for flag in BASE_FLAGS + ("--window-position=0,0", "--window-size=1080,1920"):
        assert flag in argv
    assert "--window-size=1920,1080" in command_line("display", "http://x/display")


def test_launch_dry_run_prints_the_command(app):
    """--dry-run prints the command line and starts nothing."""
    result = app.test_cli_runner().invoke(launch_command, ["--screen", "display", "--dry-run",
                                                           "--browser", "/usr/bin/chromium"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("/usr/bin/chromium --kiosk")
    assert result.output.strip().endswith("http://127.0.0.1:8080/display")


def test_policy_file_written(app, tmp_path, monkeypatch):
    """--write-policy writes kiosk.json: only the app's origin; no devtools, printing, downloads."""
    monkeypatch.setattr("kiosk.launch.os.execvp", lambda *a: pytest.fail("must not start a browser in tests"))
    policy_dir = tmp_path / "managed"
    result = app.test_cli_runner().invoke(launch_command, [
        "--screen", "kiosk", "--url", "http://10.0.0.5:8080/kiosk", "--write-policy", str(policy_dir), "--dry-run"])
    assert result.exit_code == 0, result.output
    data = json.loads((policy_dir / "kiosk.json").read_text())
    assert data == policy("http://10.0.0.5:8080/kiosk")
    assert data["URLBlocklist"] == ["*"] and data["URLAllowlist"] == ["http://10.0.0.5:8080"]
    assert data["DeveloperToolsAvailability"] == 2 and data["AutoplayAllowed"] is True
    assert data["PrintingEnabled"] is False and data["TranslateEnabled"] is False


def test_unwritable_policy_directory_is_explained(app, tmp_path):
    """A policy directory that cannot be written stops with a clear message."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = app.test_cli_runner().invoke(launch_command, ["--screen", "kiosk", "--write-policy",
                                                           str(blocker / "managed"), "--dry-run"])
    assert result.exit_code == 1 and "cannot write the policy" in result.output


@pytest.mark.parametrize("args,message", [
    (["--screen", "kiosk", "--url", "ftp://x/kiosk"], "is not an http(s) URL"),
    (["--screen", "kiosk", "--window-size", "big"], "use W,H"),
    (["--screen", "tv"], "Invalid value"),
])
def test_bad_launch_options_are_explained(app, args, message):
    """Wrong input stops with a message naming the option."""
    result = app.test_cli_runner().invoke(launch_command, args + ["--dry-run"])
    assert result.exit_code == 2 and message in result.output


def test_launch_command_is_registered(app):
    """`flask --app kiosk launch-browser` exists."""
    assert "launch-browser" in app.cli.commands


# -- static files ----------------------------------------------------------------------------------

def test_static_text_is_gzipped_and_versioned_urls_cached(client):
    """Browsers get compressed CSS/JS; URLs with the content hash may be cached for a year."""
    page = client.get("/kiosk").get_data(as_text=True)
    import re
    css = re.search(r'href="(/static/css/screens.css\?v=\w+)"', page).group(1)
    response = client.get(css, headers={"Accept-Encoding": "gzip, br"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert "immutable" in response.headers["Cache-Control"]
    import gzip
    assert b"@font-face" in gzip.decompress(response.data)
    again = client.get(css, headers={"Accept-Encoding": "gzip", "If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    with client.get("/static/css/screens.css") as plain:
        assert plain.headers["Cache-Control"] == "no-cache" and "Content-Encoding" not in plain.headers


def test_static_paths_stay_inside_the_folder(client):
    """No way out of kiosk/static."""
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/nothing.css", headers={"Accept-Encoding": "gzip"}).status_code == 404


def test_html_is_compressed_for_browsers(client):
    """Pages over 1 KB go out gzipped to clients that accept it."""
    response = client.get("/display", headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in response.headers["Vary"]
