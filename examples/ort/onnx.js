'use strict';
// A hand-written encoder for the few ONNX ModelProto messages a one-node
// model needs (onnx.proto3 field numbers). Only what the workers use.

const ELEM = { float32: 1, int32: 6, int64: 7, bool: 9, float16: 10 };

function varint(n) {
  // n: a non-negative integer or BigInt below 2^63.
  let v = BigInt(n);
  const out = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Buffer.from(out);
}

function key(field, wire) { return varint((field << 3) | wire); }

// Field encoders: each returns a Buffer holding one key-value pair.
function fInt(field, n) { return Buffer.concat([key(field, 0), varint(n)]); }
function fBytes(field, b) {
  if (typeof b === 'string') b = Buffer.from(b, 'utf8');
  return Buffer.concat([key(field, 2), varint(b.length), b]);
}
function fFloat(field, x) {
  const b = Buffer.alloc(4);
  b.writeFloatLE(x);
  return Buffer.concat([key(field, 5), b]);
}

// dims: numbers (fixed) or strings (symbolic).
function valueInfo(name, elem, dims) {
  const dimMsgs = dims.map((d) => fBytes(1, typeof d === 'string' ? fBytes(2, d) : fInt(1, d)));
  const shape = Buffer.concat(dimMsgs);
  const tensorType = Buffer.concat([fInt(1, ELEM[elem]), fBytes(2, shape)]);
  return Buffer.concat([fBytes(1, name), fBytes(2, fBytes(1, tensorType))]);
}

// attrs: {name: {i: n} | {f: x} | {s: str}}; AttributeProto type: FLOAT 1, INT 2, STRING 3.
function attribute(name, a) {
  if ('f' in a) return Buffer.concat([fBytes(1, name), fFloat(2, a.f), fInt(20, 1)]);
  if ('i' in a) {
    const v = BigInt.asUintN(64, BigInt(a.i)); // negative ints are two's complement varints
    return Buffer.concat([fBytes(1, name), key(3, 0), varint(v), fInt(20, 2)]);
  }
  if ('s' in a) return Buffer.concat([fBytes(1, name), fBytes(4, a.s), fInt(20, 3)]);
  throw new Error('attribute ' + name + ': unknown kind');
}

// model({opType, domain, opset, inputs: [[name, elem, dims] | null], outputs: [[name, elem, dims]],
//        nodeOutputs: [names], attrs}) -> Buffer (a serialized ModelProto).
function model(m) {
  const nodeIn = m.inputs.map((x) => (x ? x[0] : ''));
  const node = Buffer.concat([
    ...nodeIn.map((n) => fBytes(1, n)),
    ...m.nodeOutputs.map((n) => fBytes(2, n)),
    fBytes(3, 'n0'),
    fBytes(4, m.opType),
    ...Object.entries(m.attrs).map(([k, v]) => fBytes(5, attribute(k, v))),
    ...(m.domain ? [fBytes(7, m.domain)] : []),
  ]);
  const graph = Buffer.concat([
    fBytes(1, node),
    fBytes(2, 'g'),
    ...m.inputs.filter((x) => x).map((x) => fBytes(11, valueInfo(...x))),
    ...m.outputs.map((x) => fBytes(12, valueInfo(...x))),
  ]);
  const opsets = [fBytes(8, Buffer.concat([fBytes(1, ''), fInt(2, m.opset)]))];
  if (m.domain) opsets.push(fBytes(8, Buffer.concat([fBytes(1, m.domain), fInt(2, 1)])));
  return Buffer.concat([fInt(1, 10), fBytes(2, 'attnvet'), fBytes(7, graph), ...opsets]);
}

module.exports = { model };
