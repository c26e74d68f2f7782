"""Computes the DSSE test vector in dsse_vector.json independently of the Rust
code: Python's `cryptography` for Ed25519, PAE written from the DSSE spec.
Run: python3 make_dsse_vector.py > dsse_vector.json"""
import base64, hashlib, json
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

seed = bytes(range(32))
key = Ed25519PrivateKey.from_private_bytes(seed)
pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
keyid = hashlib.sha256(pub).digest()[:16].hex()
payload_type = "application/vnd.fundtrail.event+json"
event = {
    "id": "01937b2e-4c1a-7d3e-9f00-123456789abc",
    "fund": "host",
    "type": "host.established",
    "occurred_at": "2026-01-01T00:00:00Z",
    "author": keyid,
    "body": {"host_name": "某市慈善总会", "host_key": keyid, "public_key": base64.b64encode(pub).decode()},
    "v": 1,
}
payload = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
pae = b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(payload), payload)
sig = key.sign(pae)
print(json.dumps({
    "seed_hex": seed.hex(),
    "public_key_b64": base64.b64encode(pub).decode(),
    "keyid": keyid,
    "payload_b64": base64.b64encode(payload).decode(),
    "pae_sha256": hashlib.sha256(pae).hexdigest(),
    "sig_b64": base64.b64encode(sig).decode(),
    "envelope": json.dumps({"payload": base64.b64encode(payload).decode(), "payloadType": payload_type,
                            "signatures": [{"keyid": keyid, "sig": base64.b64encode(sig).decode()}]}, separators=(",", ":")),
}, indent=2, ensure_ascii=False))
