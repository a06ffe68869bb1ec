#!/usr/bin/env node
'use strict';
// attnvet exec worker (docs/worker.md) running ONNX Runtime's CPU attention
// kernels through onnxruntime-node: one single-node model per shape, cached.
//
//   node examples/ort/worker.js --op gqa|attention --dtype fp32|fp16 [--naive]
//
// --op gqa        com.microsoft.GroupQueryAttention (local_window_size, head_sink)
// --op attention  ONNX Attention, opset 23 (window and sink through attn_mask)
// --naive         GQA only: set ORT_GQA_DISABLE_FLASH_ATTENTION=1 (ORT's unfused path)
// --probe         print what the window attribute means (no protocol; docs/interop.md)
//
// The package is found through NODE_PATH, ATTNVET_ORT_DIR (a folder holding
// node_modules/onnxruntime-node) or the repository's .ort/ folder. The window
// family only: the precision each declares, and why, is in docs/interop.md.

const path = require('path');
const onnx = require('./onnx');

const args = process.argv.slice(2);
function flag(name, dflt) {
  const i = args.indexOf('--' + name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
}
const OP = flag('op', 'gqa');
const DTYPE = flag('dtype', 'fp32');
const NAIVE = args.includes('--naive');
if (!['gqa', 'attention'].includes(OP) || !['fp32', 'fp16'].includes(DTYPE) || (NAIVE && OP !== 'gqa')) {
  process.stderr.write('usage: worker.js --op gqa|attention --dtype fp32|fp16 [--naive]\n');
  process.exit(2);
}
if (NAIVE) process.env.ORT_GQA_DISABLE_FLASH_ATTENTION = '1'; // read by the kernel's constructor

function loadOrt() {
  const dirs = [process.env.ATTNVET_ORT_DIR, path.join(__dirname, '..', '..', '.ort')].filter(Boolean);
  for (const d of dirs) {
    try {
      return require(require.resolve('onnxruntime-node', { paths: [d] }));
    } catch (e) { /* next */ }
  }
  return require('onnxruntime-node');
}
const ort = loadOrt();

// ---------- fp16 <-> fp32 (round to nearest even) ----------
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function toF16(x) {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 255) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 112; // fp16 biased exponent
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (r & 1))) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1))) r++;
  return sign | r;
}
function fromF16(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >>> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1024 + m) * 2 ** (e - 25);
}

// ---------- frames and safetensors ----------
let inBuf = Buffer.alloc(0), waiting = null, ended = false;
process.stdin.on('data', (d) => { inBuf = Buffer.concat([inBuf, d]); if (waiting) waiting(); });
process.stdin.on('end', () => { ended = true; if (waiting) waiting(); });
async function readN(n) {
  while (inBuf.length < n) {
    if (ended) return null;
    await new Promise((r) => { waiting = r; });
    waiting = null;
  }
  const b = inBuf.subarray(0, n);
  inBuf = inBuf.subarray(n);
  return b;
}
async function readFrame() {
  const n = await readN(8);
  if (!n) return null;
  const len = Number(n.readBigUInt64LE(0));
  const p = await readN(len);
  if (!p) return null;
  const h = Number(p.readBigUInt64LE(0));
  const hdr = JSON.parse(p.subarray(8, 8 + h).toString('utf8'));
  const data = p.subarray(8 + h);
  const meta = hdr.__metadata__ || {};
  const ts = {};
  for (const [k, v] of Object.entries(hdr)) {
    if (k === '__metadata__') continue;
    const raw = Buffer.from(data.subarray(v.data_offsets[0], v.data_offsets[1])); // aligned copy
    const ab = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length);
    const arr = { F32: Float32Array, F16: Uint16Array, BF16: Uint16Array, I32: Int32Array, F64: Float64Array }[v.dtype];
    if (!arr) throw new Error('tensor ' + k + ': dtype ' + v.dtype + ' not handled');
    ts[k] = { dtype: v.dtype, shape: v.shape, data: new arr(ab) };
  }
  return { meta, ts };
}
function writeFrame(meta, o) {
  const hdr = { __metadata__: meta };
  let data = Buffer.alloc(0);
  if (o) {
    data = Buffer.from(o.data.buffer, o.data.byteOffset, o.data.byteLength);
    hdr.o = { dtype: o.dtype, shape: o.shape, data_offsets: [0, data.length] };
  }
  const h = Buffer.from(JSON.stringify(hdr), 'utf8');
  const head = Buffer.alloc(16);
  head.writeBigUInt64LE(BigInt(8 + h.length + data.length), 0);
  head.writeBigUInt64LE(BigInt(h.length), 8);
  process.stdout.write(Buffer.concat([head, h, data]));
}

// ---------- models ----------
const ELT = DTYPE === 'fp16' ? 'float16' : 'float32';
const TYPED = DTYPE === 'fp16' ? Uint16Array : Float32Array;
const sessions = new Map();
// One intra-op and one inter-op thread: a process uses one core, so that
// --procs N runs N of them on N cores. Nearly every case has a shape of
// its own (scale, window and heads are attributes): creating the session
// is most of a case's CPU time (0.7 of 1.0 ms for a small GQA case), and
// without graph optimisation (a one-node graph has nothing to fuse) and
// without the memory arena and pattern planner it costs a third less.
// The cache is for the shrinker and the gate, whose cases repeat shapes.
const SESSION = {
  intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
  graphOptimizationLevel: 'disabled', enableCpuMemArena: false, enableMemPattern: false,
};
const CACHE = 16;
async function session(keyParts, build) {
  const key = keyParts.join(',');
  let s = sessions.get(key);
  if (!s) {
    if (sessions.size >= CACHE) {
      const [k0, s0] = sessions.entries().next().value;
      sessions.delete(k0);
      s0.then((x) => x.release && x.release()).catch(() => {});
    }
    s = ort.InferenceSession.create(onnx.model(build()), SESSION);
    sessions.set(key, s);
  }
  return s;
}

// In 1.30.0 GQA's local_window_size L lets query t see keys t-L+1..t: L keys,
// attnvet's W (older releases showed L+1). `--probe` measures it.

function f32Scale(s) { f32[0] = s; return f32[0]; }

// A [T, G, D] tensor copied into [1, T, G*Dp] with zero columns D..Dp (exact padding).
function padHeads(src, T, G, D, Dp) {
  if (D === Dp) return src;
  const out = new TYPED(T * G * Dp);
  for (let r = 0; r < T * G; r++) out.set(src.subarray(r * D, (r + 1) * D), r * Dp);
  return out;
}

async function runGQA(c) {
  const { T, H, Hkv, D, Dv, W } = c;
  // GQA wants one head size, a multiple of 8: pad q, k and v with zero columns
  // (exact: a zero column adds 0 to every dot product and is dropped from o).
  const Dp = Math.ceil(Math.max(D, Dv) / 8) * 8;
  const lws = W === 0 ? -1 : W;
  const hasSink = !!c.sink;
  const sess = await session(['gqa', H, Hkv, Dp, lws, c.scale, hasSink], () => ({
    opType: 'GroupQueryAttention', domain: 'com.microsoft', opset: 23,
    inputs: [
      ['query', ELT, [1, 'T', H * Dp]], ['key', ELT, [1, 'T', Hkv * Dp]], ['value', ELT, [1, 'T', Hkv * Dp]],
      null, null, ['seqlens_k', 'int32', [1]], ['total_sequence_length', 'int32', []],
      null, null, null, null, hasSink ? ['head_sink', ELT, [H]] : null,
    ],
    nodeOutputs: ['output', 'present_key', 'present_value'],
    outputs: [['output', ELT, [1, 'T', H * Dp]]],
    attrs: { num_heads: { i: H }, kv_num_heads: { i: Hkv }, scale: { f: c.scale }, local_window_size: { i: lws } },
  }));
  const feeds = {
    query: new ort.Tensor(ELT, padHeads(c.q, T, H, D, Dp), [1, T, H * Dp]),
    key: new ort.Tensor(ELT, padHeads(c.k, T, Hkv, D, Dp), [1, T, Hkv * Dp]),
    value: new ort.Tensor(ELT, padHeads(c.v, T, Hkv, Dv, Dp), [1, T, Hkv * Dp]),
    seqlens_k: new ort.Tensor('int32', Int32Array.from([T - 1]), [1]),
    total_sequence_length: new ort.Tensor('int32', Int32Array.from([T]), []),
  };
  if (hasSink) feeds.head_sink = new ort.Tensor(ELT, c.sink, [H]);
  const s = await sess;
  const y = (await s.run(feeds, ['output'])).output.data;
  const o = new TYPED(T * H * Dv);
  for (let r = 0; r < T * H; r++) o.set(y.subarray(r * Dp, r * Dp + Dv), r * Dv);
  return o;
}

// ONNX Attention has no window and no sink. The window is an attn_mask:
// without a sink a boolean one (true = attend), which ORT itself turns into
// an additive mask; with a sink a float one, −∞ on hidden keys (the ONNX
// reference implementation's value for a false entry). A sink σ_h is one
// extra key of zeros with value zeros whose mask entry is σ_h, so its score
// is exactly 0·scale + σ_h and it enters only the denominator. A +∞ sink
// masks every real key and gets score 0 (o = 0 exactly); a −∞ sink is no
// sink. docs/interop.md says why the two mask kinds matter.
async function runAttention(c) {
  const { T, H, Hkv, D, Dv, W } = c;
  const sinkCol = !!c.sink && Array.from(c.sinkF32).some((s) => s !== -Infinity);
  const Tk = T + (sinkCol ? 1 : 0);
  const maskElt = sinkCol ? ELT : 'bool';
  const sess = await session(['att', H, Hkv, D, Dv, c.scale, maskElt], () => ({
    opType: 'Attention', domain: '', opset: 23,
    inputs: [
      ['Q', ELT, [1, 'T', H * D]], ['K', ELT, [1, 'TK', Hkv * D]], ['V', ELT, [1, 'TK', Hkv * Dv]],
      ['attn_mask', maskElt, [1, H, 'T', 'TK']],
    ],
    nodeOutputs: ['Y'],
    outputs: [['Y', ELT, [1, 'T', H * Dv]]],
    attrs: { q_num_heads: { i: H }, kv_num_heads: { i: Hkv }, scale: { f: c.scale } },
  }));
  // Boolean: 0 hidden, 1 visible. Float: −∞ hidden, 0 visible (fp16 bits 0xfc00, 0).
  const HIDE = sinkCol ? (DTYPE === 'fp16' ? 0xfc00 : -Infinity) : 0;
  const SHOW = sinkCol ? 0 : 1;
  const mask = sinkCol ? new TYPED(H * T * Tk).fill(HIDE) : new Uint8Array(H * T * Tk);
  for (let h = 0; h < H; h++) {
    const sg = c.sink ? c.sinkF32[h] : -Infinity;
    for (let t = 0; t < T; t++) {
      const row = (h * T + t) * Tk;
      if (sg !== Infinity) {
        for (let j = W === 0 ? 0 : Math.max(0, t - W + 1); j <= t; j++) mask[row + j] = SHOW;
      }
      if (sinkCol) mask[row + T] = sg === Infinity ? 0 : sg === -Infinity ? HIDE : c.sink[h];
    }
  }
  let k = c.k, v = c.v;
  if (sinkCol) {
    k = new TYPED(Tk * Hkv * D); k.set(c.k);
    v = new TYPED(Tk * Hkv * Dv); v.set(c.v);
  }
  const feeds = {
    Q: new ort.Tensor(ELT, c.q, [1, T, H * D]),
    K: new ort.Tensor(ELT, k, [1, Tk, Hkv * D]),
    V: new ort.Tensor(ELT, v, [1, Tk, Hkv * Dv]),
    attn_mask: new ort.Tensor(maskElt, mask, [1, H, T, Tk]),
  };
  const s = await sess;
  return (await s.run(feeds, ['Y'])).Y.data;
}

// The precision each configuration declares (docs/interop.md, "ONNX Runtime").
function profile() {
  if (DTYPE === 'fp32') return { profile: 'fp32' };
  if (OP === 'gqa') {
    // fp16 in and out; q, k, v converted to fp32, scores, softmax and P·V in fp32.
    return { in_dtype: 'fp16', score_dtype: 'fp32', p_dtype: 'fp32', acc_dtype: 'fp32', out_dtype: 'fp16', out_rounding: 'rne' };
  }
  // Attention fp16: scores and the normalised P stored in fp16, GEMMs and softmax in fp32.
  return { in_dtype: 'fp16', score_dtype: 'fp16', p_dtype: 'fp16', acc_dtype: 'fp32', out_dtype: 'fp16', out_rounding: 'rne' };
}
const NAME = `ort-1.30-${OP === 'gqa' ? 'GroupQueryAttention' : 'Attention23'}-${DTYPE}${NAIVE ? '-naive' : ''}`;

function widen(t) {
  const o = new Float32Array(t.data.length);
  if (t.dtype === 'F16') for (let i = 0; i < o.length; i++) o[i] = fromF16(t.data[i]);
  else if (t.dtype === 'BF16') {
    const w = new Uint32Array(o.buffer);
    for (let i = 0; i < o.length; i++) w[i] = t.data[i] << 16;
  } else if (t.dtype === 'F64') o.set(t.data);
  else throw new Error('dtype ' + t.dtype);
  return o;
}

function decodeCase(meta, ts) {
  if (meta.family !== 'window') return { err: 'this worker does the window family only' };
  for (const n of ['q', 'k', 'v']) {
    const t = ts[n];
    if (!t) return { err: `tensor ${n} missing` };
    if (DTYPE === 'fp16' && t.dtype !== 'F16') return { err: `tensor ${n}: ${t.dtype}, want F16` };
    // The fp32 worker is sent cases whose inputs are pinned to fp16 or bf16
    // too: widening them to fp32 is exact.
    if (DTYPE === 'fp32' && t.dtype !== 'F32') t.data = widen(t);
  }
  const [T, H, D] = ts.q.shape, Hkv = ts.k.shape[1], Dv = ts.v.shape[2];
  const c = { T, H, Hkv, D, Dv, W: Number(meta.window || 0), scale: f32Scale(Number(meta.softmax_scale)),
    q: ts.q.data, k: ts.k.data, v: ts.v.data };
  if (ts.attn_sink) {
    // F32 (protocol 1), or the dtype the hello declared (protocol 2: F16 for fp16).
    const s = ts.attn_sink.dtype === 'F32' ? ts.attn_sink.data : widen(ts.attn_sink);
    c.sinkF32 = s;
    if (DTYPE === 'fp16') {
      // Both operators take the sink in the model's dtype: refuse what fp16 cannot hold.
      c.sink = new Uint16Array(H);
      for (let h = 0; h < H; h++) {
        c.sink[h] = toF16(s[h]);
        const back = fromF16(c.sink[h]);
        if (back !== s[h]) { // ±∞ are fp16 values
          return { err: `attn_sink[${h}] = ${s[h]} is not representable in fp16 (the operator's sink dtype)` };
        }
      }
    } else {
      c.sink = Float32Array.from(s);
    }
  }
  return { c };
}

async function probe() {
  // One head, q = 1, k_j = j/8, v_j = j in the first of D = 8 columns (GQA
  // wants a multiple of 8): every key has its own value, so which keys a
  // query saw is legible in o. L and L+1 keys are tried, without and with a
  // negligible head_sink (which switches the fp32 kernel to its unfused path).
  const T = 6, W = 2, D = 8;
  const k = new Float32Array(T).map((_, j) => j / 8), v = new Float32Array(T).map((_, j) => j);
  const wide = (a) => { const o = new Float32Array(T * D); a.forEach((x, j) => { o[j * D] = x; }); return o; };
  for (const [off, sink] of [[0, false], [1, false], [0, true], [1, true]]) {
    const lws = W - off;
    const sess = await ort.InferenceSession.create(onnx.model({
      opType: 'GroupQueryAttention', domain: 'com.microsoft', opset: 23,
      inputs: [['query', 'float32', [1, T, D]], ['key', 'float32', [1, T, D]], ['value', 'float32', [1, T, D]],
        null, null, ['seqlens_k', 'int32', [1]], ['total_sequence_length', 'int32', []],
        null, null, null, null, sink ? ['head_sink', 'float32', [1]] : null],
      nodeOutputs: ['output', 'present_key', 'present_value'], outputs: [['output', 'float32', [1, T, D]]],
      attrs: { num_heads: { i: 1 }, kv_num_heads: { i: 1 }, scale: { f: 1 }, local_window_size: { i: lws } },
    }));
    const y = (await sess.run({
      query: new ort.Tensor('float32', wide(new Float32Array(T).fill(1)), [1, T, D]),
      key: new ort.Tensor('float32', wide(k), [1, T, D]), value: new ort.Tensor('float32', wide(v), [1, T, D]),
      seqlens_k: new ort.Tensor('int32', Int32Array.from([T - 1]), [1]),
      total_sequence_length: new ort.Tensor('int32', Int32Array.from([T]), []),
      ...(sink ? { head_sink: new ort.Tensor('float32', Float32Array.from([-1e30]), [1]) } : {}),
    }, ['output'])).output.data.filter((_, i) => i % D === 0);
    const exact = (n) => Array.from({ length: T }, (_, t) => {
      let num = 0, den = 0;
      for (let j = Math.max(0, t - n + 1); j <= t; j++) { const e = Math.exp(k[j]); num += e * v[j]; den += e; }
      return num / den;
    });
    const e1 = exact(lws), e2 = exact(lws + 1);
    const d = (e) => Math.max(...Array.from(y).map((x, i) => Math.abs(x - e[i])));
    console.log(`${NAIVE ? 'naive ' : ''}${sink ? 'head_sink=-1e30 ' : ''}local_window_size=${lws}: o=${Array.from(y).map((x) => x.toFixed(6)).join(' ')}; ` +
      `max|o - exact(${lws} keys)|=${d(e1).toExponential(2)}, max|o - exact(${lws + 1} keys)|=${d(e2).toExponential(2)}`);
  }
}

async function main() {
  if (args.includes('--probe')) return probe();
  for (;;) {
    const f = await readFrame();
    if (!f) return;
    const { meta, ts } = f;
    if (meta.request === 'hello') {
      const hello = { ...profile(), name: NAME };
      if (Number(meta.protocol_max || 1) >= 2) {
        // Protocol v2 (docs/worker.md): declare the dtypes the operator takes
        // and the family, so attnvet skips what it cannot hold instead of
        // sending it to be refused.
        const dt = DTYPE === 'fp16' ? 'F16' : 'F32';
        // max_inflight 2: the next request waits in the pipe while this
        // one runs, so the process never waits for attnvet between cases.
        Object.assign(hello, { protocol: '2', families: 'window', max_inflight: '2',
          'dtype.q': dt, 'dtype.k': dt, 'dtype.v': dt, 'dtype.attn_sink': dt });
      }
      writeFrame(hello);
      continue;
    }
    const { c, err } = decodeCase(meta, ts);
    if (err) { writeFrame({ error: err }); continue; }
    try {
      const o = OP === 'gqa' ? await runGQA(c) : await runAttention(c);
      writeFrame({}, { dtype: DTYPE === 'fp16' ? 'F16' : 'F32', shape: [c.T, c.H, c.Dv], data: o });
    } catch (e) {
      writeFrame({ error: 'onnxruntime: ' + String(e.message || e).split('\n')[0] });
    }
  }
}
main().catch((e) => { process.stderr.write(String(e.stack || e) + '\n'); process.exit(3); });
