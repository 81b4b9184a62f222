// RFC 6962 inclusion proofs checked in the browser with SubtleCrypto SHA-256, exactly as
// service/merkle.py: leaf SHA-256(0x00 || leaf), node SHA-256(0x01 || left || right), the
// iterative verification of RFC 9162 §2.1.3.2.
const enc = new TextEncoder();

export function hexToBytes(hex) {
  if (typeof hex !== "string" || hex.length % 2 || /[^0-9a-fA-F]/.test(hex)) {
    throw new Error(`not hex: ${String(hex).slice(0, 16)}`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
export function bytesToHex(b) {
  return Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");
}
async function sha256(...parts) {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const buf = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { buf.set(p, o); o += p.length; }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", buf));
}
export const leafHash = (leafBytes) => sha256(new Uint8Array([0]), leafBytes);
export const nodeHash = (l, r) => sha256(new Uint8Array([1]), l, r);

// The root recomputed from the leaf text and the proof; throws on a malformed proof.
export async function rootFromInclusion(index, size, leafText, hashesHex) {
  if (!(size > 0) || !(index >= 0 && index < size)) {
    throw new Error(`leaf_index ${index} outside tree_size ${size}`);
  }
  const path = hashesHex.map(hexToBytes);
  if (path.some((h) => h.length !== 32)) throw new Error("hashes must be 32 bytes");
  let fn = index, sn = size - 1;
  let r = await leafHash(enc.encode(leafText));
  for (const p of path) {
    if (sn === 0) throw new Error("proof has more hashes than the tree has levels");
    if ((fn & 1) || fn === sn) {
      r = await nodeHash(p, r);
      if (!(fn & 1)) { while (fn && !(fn & 1)) { fn >>= 1; sn >>= 1; } }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1; sn >>= 1;
  }
  if (sn !== 0) throw new Error("proof has fewer hashes than the tree has levels");
  return bytesToHex(r);
}

// The whole check of a /v1/accounts/{id}/proof bundle for account `id`.
export async function verifyBundle(bundle, id, publishedRoot) {
  const { proof, commitment, salt } = bundle;
  const steps = [];
  let ok = true;
  const leaf = JSON.parse(proof.leaf);
  const idHash = bytesToHex(await sha256(hexToBytes(salt), enc.encode(id)));
  const idOk = idHash === leaf.account;
  steps.push({ what: "leaf names this account: SHA-256(salt || id) = leaf.account", ok: idOk,
               detail: idHash });
  ok = ok && idOk;
  let root = null;
  try {
    root = await rootFromInclusion(proof.leaf_index, proof.tree_size, proof.leaf, proof.hashes);
  } catch (e) {
    steps.push({ what: "proof well formed", ok: false, detail: e.message });
    return { ok: false, steps, leaf, root: null };
  }
  const rootOk = root === String(commitment.root).toLowerCase();
  steps.push({ what: `root from leaf ${proof.leaf_index} of ${proof.tree_size} and ${proof.hashes.length} hashes = commitment ${commitment.seq}'s root`,
               ok: rootOk, detail: root });
  ok = ok && rootOk;
  if (publishedRoot) {
    const same = publishedRoot.seq === commitment.seq;
    steps.push({ what: same ? "this commitment is the latest published"
                            : `a newer commitment (${publishedRoot.seq}) has been published since`,
                 ok: same ? publishedRoot.root === commitment.root : null,
                 detail: publishedRoot.root });
    if (same) ok = ok && publishedRoot.root === commitment.root;
  }
  return { ok, steps, leaf, root };
}
