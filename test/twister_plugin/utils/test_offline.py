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


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_the_package_import_guards_nltk_imported_later_by_anything():
    """One import hook, installed by ``import twister_plugin``: ESPnet imported directly (not via
    a plugin module) still finds NLTK's downloads blocked; nltk itself is not imported early."""
    r = _run("import sys, twister_plugin; assert 'nltk' not in sys.modules; "
             "import espnet2.tasks.tts, nltk; assert nltk.download._twister_blocked; print('ok')")
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]


def test_nltk_imported_before_the_package_is_patched_at_once():
    r = _run("import nltk, twister_plugin; assert nltk.download._twister_blocked; print('ok')")
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]
