// Ed25519 verification with the strict semantics of ed25519-dalek's `verify_strict`
// (schemas/README.md §1), on top of WebCrypto.
//
// WebCrypto's Ed25519 (RFC 8032 as BoringSSL implements it) refuses a non-canonical S
// in recent browsers but accepts a public key A or a commitment R of small order: under
// the identity key, R = identity and S = 0 "verify" any message. verify_strict refuses
// them, so this module refuses them before asking WebCrypto, and checks S < ℓ itself
// rather than trusting every browser to. The same accept/refuse vectors as the Rust
// verifier's (tests/data/ed25519/strict.json) run against this module in the browser
// tests (scripts/browser/tests.mjs).

const P = (1n << 255n) - 19n;
const ELL = (1n << 252n) + 27742317777372353535851937790883648493n;

// The y coordinates of the eight points of small order (the 8-torsion): the identity
// (y = 1), the point of order 2 (y = -1), the two of order 4 (y = 0) and the four of
// order 8 (y = ±y8). A point is of small order iff its y is one of these, whatever
// the sign bit and whether y was written reduced mod p or not (dalek reduces).
const Y8 = 0x7a03ac9277fdc74ec6cc392cfa53202a0f67100d760b3cba4fd84d3d706a17c7n;
const SMALL_ORDER_Y = new Set([0n, 1n, P - 1n, Y8, P - Y8]);

/** Little-endian bytes as a BigInt. */
function leInt(bytes) {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
  return n;
}

/** True if the 32-byte point encoding decodes (if at all) to a point of small order. */
export function isSmallOrder(encoding) {
  const y = leInt(encoding) & ((1n << 255n) - 1n);
  return SMALL_ORDER_Y.has(y % P);
}

/** True if the 32 bytes are a scalar below the group order ℓ (RFC 8032 §5.1.7 step 1). */
export function isCanonicalScalar(bytes) {
  return leInt(bytes) < ELL;
}

const imported = new Map();

async function importKey(pub) {
  const id = Array.from(pub, (b) => b.toString(16).padStart(2, "0")).join("");
  let key = imported.get(id);
  if (!key) {
    key = crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
    if (imported.size > 4096) imported.clear();
    imported.set(id, key);
  }
  return key;
}

/**
 * Verifies an Ed25519 signature strictly. Resolves to true or false; never throws on
 * bad input (a malformed key or signature is simply not a valid signature).
 */
export async function verifyStrict(pub, message, sig) {
  if (!(pub instanceof Uint8Array) || pub.length !== 32) return false;
  if (!(sig instanceof Uint8Array) || sig.length !== 64) return false;
  if (isSmallOrder(pub) || isSmallOrder(sig.subarray(0, 32))) return false;
  if (!isCanonicalScalar(sig.subarray(32))) return false;
  try {
    const key = await importKey(pub);
    return await crypto.subtle.verify({ name: "Ed25519" }, key, sig, message);
  } catch {
    return false;
  }
}
