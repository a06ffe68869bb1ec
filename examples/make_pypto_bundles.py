"""Independent csa/hca/swa bundles for `attnvet check` (pypto-lib's DeepSeek-V4
decode kernels), written from SPEC-pypto-today.md's semantics with torch and
numpy, none of attnvet's code.

Usage: /usr/bin/python3 examples/make_pypto_bundles.py OUTDIR

Writes OUTDIR/{csa,hca,swa}_ok.npz (o from float64 attention, rounded to bf16),
*_perturbed.npz (one element +0.05) and csa_bound_p_over_4.npz (o of a kernel
keeping compressed slots r < p//4 instead of (p+1)//4). Bundles hold bf16
values in fp32 containers (.npz has no bf16): check them with --profile bf16rne
and the flags printed per family.
"""
# o = sum_j e^{x_j} k_j / (sum_j e^{x_j} + e^{sink_h}), x_j = scale * q.k_j,
# keys: window rows >= 0 (swa: columns < swa_lens), csa compressed slots
# 0 <= r < (p+1)//4 read through cmp_block_table, hca entries >= 0.
import os, sys, numpy as np, torch
torch.manual_seed(20261202)
T_B, S, H, D, WIN, BS, CBS = 2, 2, 4, 64, 16, 8, 4
T = T_B * S
def bf(x): return x.to(torch.bfloat16)
def attend(q, rows, sink):
    # q [H, D] float64, rows list of [D] float64 tensors (a multiset)
    if not rows:
        return torch.zeros(H, D, dtype=torch.float64)
    K = torch.stack(rows)                     # [n, D]
    x = (q @ K.T) * (D ** -0.5)               # [H, n]
    m = torch.maximum(x.max(dim=1).values, sink)
    w = torch.exp(x - m[:, None])
    den = w.sum(dim=1) + torch.exp(sink - m)
    o = (w @ K) / den[:, None]
    o[torch.isposinf(sink)] = 0               # a +inf sink takes all the weight
    return o

def build(fam, bug=False):
    last = [39, 3]                            # batch 0 long history (p+1 = 40), batch 1 short (p = 2, 3)
    pos = np.array([[l - S + 1 + s for s in range(S)] for l in last]).reshape(T)
    npages = [(l + 1 + BS - 1) // BS for l in last]
    order = np.random.RandomState(1).permutation(sum(npages)) + 1  # physical page 0: a spare
    ori = bf(torch.randn(1 + sum(npages), BS, 1, D))
    ori[0] = float('nan')                     # unreferenced: may hold anything
    base = np.cumsum([0] + npages)
    def row(b, w): return int(order[base[b] + w // BS]) * BS + w % BS
    win = -np.ones((T, WIN), np.int32)
    for t in range(T):
        b, p = t // S, pos[t]
        lo = max(0, p - WIN + 1)
        for w in range(lo, p + 1):
            win[t, w - lo] = row(b, w)
    q = bf(torch.randn(T, H, D) * 2)
    sink = torch.tensor([0.5, -1.0, float('inf'), float('-inf')], dtype=torch.float32)
    t = {'q': q, 'attn_sink': sink}
    meta = {'tokens_per_batch': str(S)}
    flat = ori.reshape(-1, D).double()
    keys = [[flat[r] for r in win[tt] if r >= 0] for tt in range(T)]
    if fam == 'swa':
        lens = np.minimum(WIN, pos + 1).astype(np.int32)
        lens[1] -= 1                          # a shorter length: the newest listed row is not a key
        keys = [[flat[r] for k, r in enumerate(win[tt]) if k < lens[tt]] for tt in range(T)]
        t.update(ori_kv=ori, swa_indices=torch.from_numpy(win), swa_lens=torch.from_numpy(lens))
    else:
        ratio = 4 if fam == 'csa' else 2
        ncmp = (max(last) + 1) // ratio + 2
        MB = (ncmp + CBS - 1) // CBS
        cmp = bf(torch.randn(1 + T_B * MB, CBS, 1, D))
        table = (np.random.RandomState(2).permutation(T_B * MB) + 1).reshape(T_B, MB).astype(np.int32)
        cflat = cmp.reshape(-1, D).double()
        def crow(b, r): return cflat[int(table[b, r // CBS]) * CBS + r % CBS]
        width, topk = (12, 10) if fam == 'csa' else (6, 6)
        idx = np.zeros((T, width), np.int32)
        rs = np.random.RandomState(3)
        for tt in range(T):
            b, bound = tt // S, (pos[tt] + 1) // ratio
            kept = pos[tt] // ratio if bug else bound
            for c in range(width):
                if fam == 'csa':
                    idx[tt, c] = [rs.randint(0, max(bound, 1)), -1, -5, bound, bound - 1][rs.randint(5)]
                else:
                    idx[tt, c] = rs.randint(0, bound) if bound > 0 and rs.rand() < 0.7 else -1
            for c in range(topk):
                r = int(idx[tt, c])
                if (fam == 'csa' and 0 <= r < kept) or (fam == 'hca' and r >= 0):
                    keys[tt].append(crow(b, r))
        t.update(ori_kv=ori, window_swa_indices=torch.from_numpy(win), cmp_kv=cmp,
                 cmp_block_table=torch.from_numpy(table))
        if fam == 'csa':
            t.update(idx_topk=torch.from_numpy(idx), position_ids=torch.from_numpy(pos.astype(np.int32).reshape(T, 1)))
            meta['index_topk'] = str(topk)
        else:
            t['cmp_sparse_indices'] = torch.from_numpy(idx)
            meta['compress_ratio'] = str(ratio)
    o = torch.stack([attend(q[tt].double(), keys[tt], sink.double()) for tt in range(T)])
    return t, meta, o

def save(path, t, meta):
    arrs = {}
    for k, v in t.items():
        if v.dtype == torch.bfloat16:
            v = v.float()                     # npz has no bf16: fp32 containers of bf16 values
        arrs[k] = v.numpy()
    np.savez(path, **arrs)

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for fam in ['csa', 'hca', 'swa']:
    t, meta, o = build(fam)
    t['o'] = bf(o.float())
    save(os.path.join(out, f'{fam}_ok.npz'), t, meta)
    bad = t['o'].clone(); bad[0, 0, 5] += 0.05
    save(os.path.join(out, f'{fam}_perturbed.npz'), dict(t, o=bad), meta)
    print(fam, ' '.join(f'--{k.replace("_", "-")} {v}' for k, v in meta.items()))
t, meta, o = build('csa', bug=True)
t['o'] = bf(o.float())
save(os.path.join(out, 'csa_bound_p_over_4.npz'), t, meta)
