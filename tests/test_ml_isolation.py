"""The web process and the CLI start without torch or transformers (DESIGN: ML is isolated)."""

import subprocess
import sys


def test_web_app_and_cli_start_without_ml_libraries(tmp_path):
    code = ("import sys; from pathlib import Path; import app.cli; from app import create_app;"
            "from app.settings import Settings;"
            f"create_app(Settings(data_dir=Path({str(tmp_path)!r}), inprocess_worker=False));"
            "bad = [m for m in ('torch', 'transformers') if m in sys.modules];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
