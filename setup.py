"""Build steps beyond pyproject.toml: the wheel carries the screens' templates (the top-level
templates/ folder, installed as kiosk/templates) and the compiled catalogues (.mo, built here from
the .po files so the installed app never needs to write beside its own code)."""
import ast
import io
import pathlib
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).resolve().parent


def _locales() -> dict:
    """LOCALES of kiosk/i18n/locales.py, read without importing it (the build has Babel only)."""
    tree = ast.parse((HERE / "kiosk" / "i18n" / "locales.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "LOCALES" for t in node.targets):
            return ast.literal_eval(node.value)
    raise RuntimeError("LOCALES not found in kiosk/i18n/locales.py")


def _compile_catalogues(target: pathlib.Path) -> None:
    """Write each language's messages.mo under `target` (kiosk/i18n of the build)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    locales = _locales()
    for po in sorted((HERE / "kiosk" / "i18n").glob("*/LC_MESSAGES/messages.po")):
        lang = po.parent.parent.name
        with open(po, "rb") as fh:
            catalog = read_po(fh, locale=locales[lang], domain="messages")
        buffer = io.BytesIO()
        write_mo(buffer, catalog, use_fuzzy=False)  # as kiosk.i18n.catalogues.compile_bytes does
        out = target / lang / "LC_MESSAGES" / "messages.mo"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(buffer.getvalue())


class BuildWithData(build_py):
    """build_py, then the templates and compiled catalogues into the built kiosk package."""

    def run(self):
        """Copy templates/ to kiosk/templates and compile the catalogues."""
        super().run()
        if self.dry_run:
            return
        kiosk = pathlib.Path(self.build_lib) / "kiosk"
        shutil.copytree(HERE / "templates", kiosk / "templates", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        _compile_catalogues(kiosk / "i18n")


setup(cmdclass={"build_py": BuildWithData})
