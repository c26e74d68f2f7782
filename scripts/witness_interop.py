"""Cross-checks a running `fundtrail witness serve` with an implementation we did not
write: the `aics-tlog` / `aics-witness` Python packages (PyPI, Python >= 3.12) sign the
log's checkpoints, format the add-checkpoint requests, parse the answers and verify the
cosignatures.

    pip install aics-tlog aics-witness
    LOG_VKEY=$(python scripts/witness_interop.py vkey)
    fundtrail witness keys new --name interop.test/witness --out w.key > w.vkey
    fundtrail witness serve --key w.key --data w-data --listen 127.0.0.1:7380 \
        --log "interop.test/log=$LOG_VKEY" &
    python scripts/witness_interop.py run http://127.0.0.1:7380 "$(cat w.vkey)"

Use a fresh data directory each run (the witness remembers size 13).
"""
import sys, hashlib, urllib.request, urllib.error
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from aics_tlog.checkpoint import Checkpoint, sign_checkpoint
from aics_tlog.note import vkey_from_ed25519, format_vkey
from aics_tlog.cosign import verify_cosignature
from aics_witness.protocol import format_add_checkpoint_request, parse_signature_lines, parse_size_body
from aics_witness.protocol import format_signature_line

mode = sys.argv[1]
log_key = Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32)
origin = "interop.test/log"
if mode == "vkey":
    print(format_vkey(vkey_from_ed25519(origin, log_key.public_key().public_bytes_raw())))
    sys.exit()
url, witness_vkey = sys.argv[2], sys.argv[3]
wname, wid, wkey = witness_vkey.split("+", 2)
import base64
wpub = base64.b64decode(wkey)[1:]

def leaf(i): return hashlib.sha256(b"\x00" + f"e{i}".encode()).digest()
def node(a, b): return hashlib.sha256(b"\x01" + a + b).digest()
def mth(leaves):
    if len(leaves) == 0: return hashlib.sha256(b"").digest()
    if len(leaves) == 1: return leaves[0]
    k = 1
    while k * 2 < len(leaves): k *= 2
    return node(mth(leaves[:k]), mth(leaves[k:]))
def subproof(m, leaves, b):  # RFC 6962 2.1.2
    n = len(leaves)
    if m == n: return [] if b else [mth(leaves)]
    k = 1
    while k * 2 < n: k *= 2
    if m <= k: return subproof(m, leaves[:k], b) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]

def note_of(n):
    cp = Checkpoint(origin=origin, size=n, root=mth([leaf(i) for i in range(n)]))
    signed = sign_checkpoint(cp, log_key, origin)
    sig = signed.signatures[0]
    return cp, (cp.text() + "\n" + format_signature_line(sig)).encode()

def post(body):
    req = urllib.request.Request(url + "/add-checkpoint", data=body, method="POST")
    try:
        with urllib.request.urlopen(req) as r: return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e: return e.code, e.headers.get("Content-Type"), e.read()

cp, note = note_of(5)
status, ctype, body = post(format_add_checkpoint_request(0, [], note))
assert status == 200, (status, body)
lines = parse_signature_lines(body.decode())
assert verify_cosignature(lines[0].signature, wname, wpub, origin, 5, cp.root), "cosignature verifies"
print("200 cosignature verified by aics-tlog")
status, ctype, body = post(format_add_checkpoint_request(0, [], note))
assert status == 409 and parse_size_body(body) == 5 and ctype == "text/x.tlog.size", (status, ctype, body)
print("409", parse_size_body(body))
cp, note = note_of(13)
proof = subproof(5, [leaf(i) for i in range(13)], True)
status, ctype, body = post(format_add_checkpoint_request(5, proof, note))
assert status == 200, (status, body)
lines = parse_signature_lines(body.decode())
assert verify_cosignature(lines[0].signature, wname, wpub, origin, 13, cp.root)
print("200 after a consistency proof made by an RFC 6962 implementation written here in Python")
