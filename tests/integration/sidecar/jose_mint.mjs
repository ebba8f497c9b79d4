// Mints test tokens with the npm `jose` package, so that the sidecar (PyJWT) verifies
// tokens a different library made. Reads one JSON request per line on stdin:
//   {"kind": "signed", "alg": "RS256", "pem": "<PKCS8>", "kid": "...", "typ": "at+jwt", "claims": {...}}
//   {"kind": "unsecured", "claims": {...}}
//   {"kind": "hmac", "alg": "HS256", "secret": "<text>", "kid": "...", "claims": {...}}
// and writes one token per line on stdout.
import { createInterface } from "node:readline";
import { SignJWT, UnsecuredJWT, importPKCS8 } from "jose";

async function mint(request) {
  const { kind, alg, kid, typ, claims } = request;
  if (kind === "unsecured") {
    return new UnsecuredJWT(claims).encode();
  }
  const key = kind === "hmac"
    ? new TextEncoder().encode(request.secret)
    : await importPKCS8(request.pem, alg);
  return new SignJWT(claims).setProtectedHeader({ alg, kid, typ: typ ?? "at+jwt" }).sign(key);
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line.trim()) {
    process.stdout.write((await mint(JSON.parse(line))) + "\n");
  }
}
