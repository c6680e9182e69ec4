"""Twister: ESPnet plugin for Whisper self-refinement with pseudo-labels and TTS-synthesised text."""
from setuptools import find_packages, setup

setup(
    name="twister_plugin",
    version="0.1.0",
    description="Whisper self-refinement with unlabeled speech and text, as an ESPnet plugin",
    packages=find_packages(include=["twister_plugin", "twister_plugin.*"]),
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.4",
        "torchaudio",
        "espnet>=202412",
        "openai-whisper>=20240930",
        "lhotse",
        "jiwer",
        "sentencepiece",
        "soundfile",
        "opencc-python-reimplemented",
        "cn2an",
        "pypinyin",
        "tqdm",
        "matplotlib",
        "safetensors",
    ],
    extras_require={"test": ["pytest", "hypothesis", "ctranslate2", "faster-whisper"]},
    entry_points={"espnet.plugins": ["twister = twister_plugin"]},
)
