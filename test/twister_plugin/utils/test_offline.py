"""Importing the plugin's ESPnet tasks never tries to download NLTK data (g2p_en's import hook)."""
import subprocess
import sys


def test_task_imports_make_no_download_attempt():
    code = ("import nltk, twister_plugin.asr.task, twister_plugin.tts.task, twister_plugin.lm.task; "
            "assert nltk.download('cmudict') is False; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().endswith("ok")
    assert "nltk_data" not in r.stderr and "urlopen" not in r.stderr, r.stderr[-2000:]
