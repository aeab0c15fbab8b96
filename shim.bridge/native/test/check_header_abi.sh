#!/usr/bin/env bash
# Checks that include/vgpu_cuda.h has the same ABI as NVIDIA's cuda.h.
#
# From our header it generates a check for every typedef (size, alignment),
# every struct/union member (offset, size, nested members included), every
# enum constant and every numeric macro; builds test/check_header_abi.c once
# against the toolkit's cuda.h and once against ours; and diffs the outputs.
# Without the toolkit headers it prints SKIP and succeeds, so the build does
# not depend on them. Generating the checks needs python3.
#
# Usage: test/check_header_abi.sh [build-dir]
# Environment: CUDA_INC (default /usr/local/cuda/include), CC (default gcc).
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
CUDA_INC=${CUDA_INC:-/usr/local/cuda/include}
CC=${CC:-gcc}
out=${1:-$root/build}/abi

if [ ! -r "$CUDA_INC/cuda.h" ]; then
    echo "SKIP: no CUDA toolkit headers"
    exit 0
fi
command -v python3 > /dev/null || { echo "check_header_abi: python3 is needed to generate the checks" >&2; exit 1; }
mkdir -p "$out"

ours=$root/include/vgpu_cuda.h

# Our header preprocessed, keeping only the lines that come from it (not from
# stddef.h/stdint.h), comments and #ifdefs resolved. Macros are listed
# separately: those our header defines beyond what the compiler predefines.
echo '#include "vgpu_cuda.h"' > "$out/ours_wrap.c"
"$CC" -std=c11 -E -I"$root/include" "$out/ours_wrap.c" > "$out/ours.i"
"$CC" -std=c11 -E -dM -I"$root/include" "$out/ours_wrap.c" | sort > "$out/ours.macros"
echo | "$CC" -std=c11 -E -dM -include stddef.h -include stdint.h - | sort > "$out/base.macros"
comm -23 "$out/ours.macros" "$out/base.macros" > "$out/new.macros"

# cuda.h keeps CUdeviceptr_v1 and the *_v1 copy/array descriptors inside its
# __CUDA_API_VERSION_INTERNAL block, which does not compile on its own; lift
# just those typedefs out for the real side.
awk '/^#if defined\(__CUDA_API_VERSION_INTERNAL\)$/ {on=1; next}
     on && /^#(elif|endif)/ {on=0}
     on && /^[ \t]*typedef/ {grab=1; depth=0}
     on && grab {print; n=gsub(/\{/,"{"); depth+=n; n=gsub(/\}/,"}"); depth-=n;
                 if (depth==0 && /;[ \t]*$/) grab=0}' \
    "$CUDA_INC/cuda.h" > "$out/abi_legacy_types.h"

python3 - "$out/ours.i" "$out/new.macros" "$out/abi_checks.inc" "$(basename "$ours")" <<'PY'
import re, sys

src, macros_path, out_path, header_name = sys.argv[1:5]

# Keep the text that the preprocessor attributes to our header.
keep, text = False, []
for line in open(src):
    m = re.match(r'# \d+ "([^"]*)"', line)
    if m:
        keep = m.group(1).endswith(header_name)
        continue
    if keep:
        text.append(line)
text = ''.join(text)
# Parentheses left inside brackets after macro expansion do not matter, but
# string literals (extern "C") would confuse the statement splitter.
text = re.sub(r'extern\s+"C"\s*\{', '', text)

def split_top(body, sep):
    """Splits at `sep` outside any (), [], {}."""
    parts, depth, cur = [], 0, []
    for ch in body:
        if ch in '([{':
            depth += 1
        elif ch in ')]}':
            depth -= 1
        if ch == sep and depth == 0:
            parts.append(''.join(cur)); cur = []
        else:
            cur.append(ch)
    parts.append(''.join(cur))
    return [p.strip() for p in parts if p.strip()]

def brace_split(decl):
    """'struct tag { body } rest' -> (head, body, rest)."""
    i = decl.index('{')
    depth = 0
    for j in range(i, len(decl)):
        if decl[j] == '{':
            depth += 1
        elif decl[j] == '}':
            depth -= 1
            if depth == 0:
                return decl[:i], decl[i + 1:j], decl[j + 1:]
    raise ValueError('unbalanced braces: ' + decl[:80])

def declarator_name(decl):
    decl = re.sub(r'\[[^\]]*\]', '', decl)
    m = re.search(r'\(\s*\*\s*(\w+)\s*\)', decl)      # function pointer
    if m:
        return m.group(1)
    return re.findall(r'\w+', decl)[-1]

def members(body, prefix):
    for decl in split_top(body, ';'):
        if '{' in decl:
            head, inner, rest = brace_split(decl)
            name = rest.strip()
            if name:
                yield prefix + name
                yield from members(inner, prefix + name + '.')
            else:                                      # anonymous struct/union
                yield from members(inner, prefix)
        else:
            yield prefix + declarator_name(decl)

checks, ntypes, nmembers, nenums = [], 0, 0, 0
def show(label, expr):
    checks.append('    SHOW("%s", %s);' % (label, expr))

for stmt in split_top(text, ';'):
    if not stmt.startswith('typedef'):
        continue
    if '{' in stmt:
        head, body, rest = brace_split(stmt)
        name = declarator_name(rest)
        if re.match(r'typedef\s+enum\b', head):
            for item in split_top(body, ','):
                const = re.match(r'\w+', item).group(0)
                show('enum %s' % const, const)
                nenums += 1
        else:
            for path in members(body, ''):
                show('offsetof %s.%s' % (name, path), 'offsetof(%s, %s)' % (name, path))
                show('sizeof %s.%s' % (name, path), 'sizeof(((%s *)0)->%s)' % (name, path))
                nmembers += 1
    else:
        name = declarator_name(stmt)
    show('sizeof %s' % name, 'sizeof(%s)' % name)
    show('alignof %s' % name, '_Alignof(%s)' % name)
    ntypes += 1

nmacros = 0
for line in open(macros_path):
    m = re.match(r'#define (\w+) (.+)$', line.rstrip('\n'))
    if not m or m.group(1).startswith('VGPU_'):
        continue                                       # empty, function-like, or ours alone
    # intptr_t first so pointer-valued handles (CU_STREAM_LEGACY) print too.
    show('macro %s' % m.group(1), '(intptr_t)(%s)' % m.group(1))
    nmacros += 1

open(out_path, 'w').write('\n'.join(checks) + '\n')
print('checks: %d types, %d members, %d enum constants, %d macros'
      % (ntypes, nmembers, nenums, nmacros))
PY

"$CC" -std=c11 -Wall -Wno-deprecated-declarations -DVGPU_ABI_REAL \
    -I"$CUDA_INC" -I"$out" "$here/check_header_abi.c" -o "$out/abi_real"
"$CC" -std=c11 -Wall -Wextra -Werror \
    -I"$root/include" -I"$out" "$here/check_header_abi.c" -o "$out/abi_ours"
"$out/abi_real" > "$out/real.txt"
"$out/abi_ours" > "$out/ours.txt"

if diff -u "$out/real.txt" "$out/ours.txt" > "$out/abi.diff"; then
    echo "PASS: vgpu_cuda.h matches $CUDA_INC/cuda.h ($(wc -l < "$out/ours.txt") facts)"
else
    cat "$out/abi.diff"
    echo "FAIL: vgpu_cuda.h differs from $CUDA_INC/cuda.h" >&2
    exit 1
fi
