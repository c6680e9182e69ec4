#!/usr/bin/env bash
# Drift check for recipes made by tools/make_recipe.sh. For every recipe egs2/<name>/asr1
# (all of them but TEMPLATE and the reference recipe the template links to, or the names
# given), following egs2/TEMPLATE/asr1/LAYOUT:
#   link  entries must be symlinks that resolve to the template's entry (a plain copy is
#         tolerated only while identical to it);
#   copy  entries must exist and be identical to the template's;
#   own   entries (conf/, local/) must exist; their contents are the recipe's own.
# The template's own entries must exist too (its links into egs2/twister/asr1 resolve).
#
# Usage: tools/check_recipes.sh [--egs2 DIR] [name...]
#   tools/check_recipes.sh              # check every recipe; exit 1 and list the problems
#   --egs2 DIR   the egs2 folder to check (default: egs2/ beside this tools/ folder)
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
egs2=$here/../egs2
while [ $# -gt 0 ]; do
  case $1 in
    --egs2) egs2=${2:?--egs2 needs a folder}; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "check_recipes.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
template=$egs2/TEMPLATE/asr1
layout=$template/LAYOUT
[ -f "$layout" ] || { echo "check_recipes.sh: no $layout" >&2; exit 2; }

problems=0
problem() { echo "check_recipes.sh: $*" >&2; problems=$((problems + 1)); }
same() { diff -rq -x __pycache__ "$1" "$2" >/dev/null 2>&1; }

kinds=(); paths=()
while read -r kind path _; do
  case $kind in ''|'#'*) continue ;; link|copy|own) ;; *) echo "check_recipes.sh: $layout: bad kind '$kind'" >&2; exit 2 ;; esac
  kinds+=("$kind"); paths+=("$path")
  [ -e "$template/$path" ] || problem "TEMPLATE: $path is missing or a broken link"
done < "$layout"

# The reference recipe(s) the template's links point into are not made recipes.
declare -A source
for i in "${!paths[@]}"; do
  [ "${kinds[$i]}" = link ] && [ -L "$template/${paths[$i]}" ] || continue
  real=$(readlink -f "$template/${paths[$i]}") || continue
  source[${real%/"${paths[$i]}"}]=1
done

check_recipe() {  # recipe folder, its name
  local dir=$1 name=$2 i kind path want
  for i in "${!paths[@]}"; do
    kind=${kinds[$i]}; path=${paths[$i]}; want=$template/$path
    if [ -L "$dir/$path" ] && [ ! -e "$dir/$path" ]; then
      problem "$name: $path is a broken link ($(readlink "$dir/$path"))"
    elif [ ! -e "$dir/$path" ]; then
      problem "$name: $path is missing"
    elif [ "$kind" = link ] && [ -L "$dir/$path" ]; then
      [ "$(readlink -f "$dir/$path")" = "$(readlink -f "$want")" ] \
        || problem "$name: $path links to $(readlink "$dir/$path"), not to the template's"
    elif [ "$kind" = link ]; then
      same "$dir/$path" "$want" \
        || problem "$name: $path is a copy that differs from the template's; put the change" \
                   "in egs2/twister/asr1 and restore the link: ln -sfn ../../TEMPLATE/asr1/$path"
    elif [ "$kind" = copy ]; then
      same "$dir/$path" "$want" \
        || problem "$name: $path differs from the template's; change the template instead"
    fi
  done
}

if [ $# -gt 0 ]; then names=("$@"); else
  names=()
  for d in "$egs2"/*/asr1; do
    [ -d "$d" ] || continue
    n=$(basename "$(dirname "$d")")
    [ "$n" = TEMPLATE ] && continue
    [ -n "${source[$(readlink -f "$d")]:-}" ] && continue
    names+=("$n")
  done
fi
for n in ${names[@]+"${names[@]}"}; do
  if [ -d "$egs2/$n/asr1" ]; then check_recipe "$egs2/$n/asr1" "$n"
  else problem "$n: no recipe at $egs2/$n/asr1"; fi
done
if [ "$problems" -gt 0 ]; then
  echo "check_recipes.sh: $problems problem(s)" >&2; exit 1
fi
echo "check_recipes.sh: ${#names[@]} recipe(s) match the template" >&2
