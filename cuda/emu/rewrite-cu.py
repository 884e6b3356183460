#!/usr/bin/env python3
# rewrite-cu.py IN.cu OUT.cc — the emulated CUDA device's source rewrite: the
# two pieces of CUDA syntax that no header can define become plain C++, and
# everything else is left to cuda/emu/include (force-included cuda_runtime.h).
#
#   kernel<<<grid, block[, shmem[, stream]]>>> (args)
#       -> LA_EMU_LAUNCH ("kernel", grid, block[, shmem[, stream]]) (kernel, args)
#   extern __shared__ [__align__ (n)] T name[];
#       -> T *const name = (T *) la_emu_dyn_smem ();
#   __shared__ T name[...];  (in a function)
#       -> the same, then la_emu_shared_poison (&name, sizeof name): the block's
#          first thread to pass the declaration fills it with 0xff (NaN), so
#          a read before the block wrote it never sees an earlier block's data
#   #pragma unroll [n]   -> dropped (g++ would warn about an unknown pragma)
#
# Strings and comments are skipped; a launch that cannot be parsed is an
# error, never passed through.  #line directives keep g++'s messages on the
# .cu lines.
import re
import sys

KERNEL = re.compile(r'([A-Za-z_][\w:]*(?:\s*<[^<>;()]*>)?)\s*$')
STATIC_SHARED = re.compile(r'(?<!extern )__shared__\s+[^;=(){}]*?([A-Za-z_]\w*)\s*((?:\[[^\]]*\]\s*)*);')
EXTERN_SHARED = re.compile(
    r'extern\s+__shared__\s+(?:__align__\s*\(\s*\d+\s*\)\s+)?([A-Za-z_][\w\s:]*?)\s+([A-Za-z_]\w*)\s*\[\s*\]\s*;')


def fail(path, text, pos, msg):
    line = text.count('\n', 0, pos) + 1
    sys.exit(f'{path}:{line}: rewrite-cu: {msg}')


def code_mask(text):
    """A copy of text with comments and string/char literals blanked (same length)."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith('//', i):
            j = text.find('\n', i)
            j = n if j < 0 else j
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2)
            j = n if j < 0 else j + 2
        elif c in '"\'':
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == '\\' else 1
            j += 1
        else:
            i += 1
            continue
        for k in range(i, min(j, n)):
            if out[k] != '\n':
                out[k] = ' '
        i = j
    return ''.join(out)


def split_top(s):
    """Split s at commas outside (), [], {}."""
    parts, depth, cur = [], 0, ''
    for ch in s:
        if ch in '([{':
            depth += 1
        elif ch in ')]}':
            depth -= 1
        if ch == ',' and depth == 0:
            parts.append(cur)
            cur = ''
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]


def close_paren(mask, i):
    """Index of the parenthesis closing the one at mask[i]."""
    depth = 0
    for j in range(i, len(mask)):
        if mask[j] == '(':
            depth += 1
        elif mask[j] == ')':
            depth -= 1
            if depth == 0:
                return j
    return -1


def rewrite(path, text):
    out, pos = [], 0
    mask = code_mask(text)
    while True:
        start = mask.find('<<<', pos)
        if start < 0:
            break
        m = KERNEL.search(mask, 0, start)
        if not m:
            fail(path, text, start, 'cannot find the kernel name before <<<')
        end_cfg = mask.find('>>>', start)
        if end_cfg < 0:
            fail(path, text, start, '<<< without >>>')
        cfg = split_top(text[start + 3:end_cfg])
        if not 2 <= len(cfg) <= 4 or not all(cfg):
            fail(path, text, start, 'a launch needs 2 to 4 configuration values')
        open_p = end_cfg + 3
        while open_p < len(mask) and mask[open_p].isspace():
            open_p += 1
        if open_p >= len(mask) or mask[open_p] != '(':
            fail(path, text, start, 'no argument list after >>>')
        close_p = close_paren(mask, open_p)
        if close_p < 0:
            fail(path, text, start, 'unbalanced argument list')
        name = re.sub(r'\s+', '', text[m.start(1):m.end(1)])
        args = text[open_p + 1:close_p].strip()
        # keep the line count: newlines inside the launch stay where they were
        nl = text.count('\n', m.start(1), close_p + 1)
        call = f'LA_EMU_LAUNCH ("{name}", {", ".join(cfg)}) ({name}{", " + args if args else ""})'
        call = call.replace('\n', ' ') + '\n' * nl
        out.append(text[pos:m.start(1)])
        out.append(call)
        pos = close_p + 1
    out.append(text[pos:])
    text = ''.join(out)

    mask = code_mask(text)
    out, pos = [], 0
    for m in EXTERN_SHARED.finditer(mask):
        typ, name = ' '.join(text[m.start(1):m.end(1)].split()), text[m.start(2):m.end(2)]
        out.append(text[pos:m.start()])
        out.append(f'{typ} *const {name} = ({typ} *) la_emu_dyn_smem ();')
        pos = m.end()
    out.append(text[pos:])
    text = ''.join(out)
    mask = code_mask(text)
    out, pos = [], 0
    for m in STATIC_SHARED.finditer(mask):
        if re.match(r'extern\s', mask[max(0, m.start() - 7):m.start()]):
            continue
        out.append(text[pos:m.end()])
        out.append(f' la_emu_shared_poison (&{m.group(1)}, sizeof {m.group(1)});')
        pos = m.end()
    out.append(text[pos:])
    text = ''.join(out)
    if '__shared__' in code_mask(text) and re.search(r'extern\s+__shared__', code_mask(text)):
        fail(path, text, code_mask(text).find('extern'), 'an extern __shared__ declaration not understood')
    text = re.sub(r'^[ \t]*#[ \t]*pragma[ \t]+unroll\b.*$', '', text, flags=re.M)
    return text


def main():
    if len(sys.argv) != 3:
        sys.exit('usage: rewrite-cu.py IN.cu OUT.cc')
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, encoding='utf-8') as f:
        text = f.read()
    body = rewrite(src, text)
    with open(dst, 'w', encoding='utf-8') as f:
        f.write(f'#line 1 "{src}"\n')
        f.write(body)


if __name__ == '__main__':
    main()
