#!/usr/bin/env bash
# Make a new recipe egs2/<name>/asr1 from egs2/TEMPLATE/asr1, as its LAYOUT file says:
# `link` entries become symlinks to ../../TEMPLATE/asr1/<entry> (shared code, never copied),
# `copy` and `own` entries are copied (symlinks followed). Then the new recipe is checked
# with tools/check_recipes.sh.
#
# Usage: tools/make_recipe.sh [--egs2 DIR] <name>
#   tools/make_recipe.sh cantonese      # -> egs2/cantonese/asr1; then edit its local/ and conf/
#   --egs2 DIR   the egs2 folder to work in (default: egs2/ beside this tools/ folder)
set -euo pipefail

die() { echo "make_recipe.sh: ERROR: $*" >&2; exit 1; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
egs2=$here/../egs2
while [ $# -gt 0 ]; do
  case $1 in
    --egs2) [ $# -ge 2 ] || die "--egs2 needs a folder"; egs2=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || die "usage: tools/make_recipe.sh [--egs2 DIR] <name>"
name=$1
[[ $name =~ ^[a-z0-9][a-z0-9_]*$ ]] \
  || die "recipe name '$name' must be lower-case letters, digits and _ (e.g. cantonese)"
template=$egs2/TEMPLATE/asr1
recipe=$egs2/$name/asr1
[ -f "$template/LAYOUT" ] || die "no template at $template (missing LAYOUT)"
[ ! -e "$egs2/$name" ] || die "$egs2/$name already exists; remove it or pick another name"

# Check every template entry first, so a failure leaves nothing half made.
entries=()
while read -r kind path _; do
  case $kind in ''|'#'*) continue ;; link|copy|own) ;; *) die "$template/LAYOUT: bad kind '$kind'" ;; esac
  [ -e "$template/$path" ] || die "template entry $template/$path is missing or a broken link"
  entries+=("$kind $path")
done < "$template/LAYOUT"

tmp=$egs2/.$name.tmp.$$
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/asr1"
for e in "${entries[@]}"; do
  kind=${e%% *}; path=${e#* }
  mkdir -p "$(dirname "$tmp/asr1/$path")"
  if [ "$kind" = link ]; then
    # ../ once per folder level of the entry, then up to egs2/ from <name>/asr1.
    up=""; d=$(dirname "$path")
    [ "$d" = . ] || up=$(sed 's|[^/][^/]*|..|g' <<<"$d")/
    ln -s "${up}../../TEMPLATE/asr1/$path" "$tmp/asr1/$path"
  else
    cp -rL "$template/$path" "$tmp/asr1/$path"
  fi
done
find "$tmp" -name __pycache__ -prune -exec rm -rf {} +
mv "$tmp" "$egs2/$name"
trap - EXIT
cat >&2 <<EOF
make_recipe.sh: made $recipe. Next: edit its conf/, and set local/prepare_data.sh's
defaults to your corpus (or give them as options), then run stage 1:
  cd $recipe && ./run.sh --stage 1 --stop_stage 1 --unlabeled_manifest TSV --text FILE \\
      --test_sets "test=TSV_or_KALDI_DIR"
EOF
"$here/check_recipes.sh" --egs2 "$egs2" "$name"
