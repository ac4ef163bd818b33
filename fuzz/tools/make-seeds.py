#!/usr/bin/env python3
"""Writes the hand-made seed inputs of corpora/fuzz/<target>/ (seed-*). Idempotent.

Inputs that fuzzing found (crashers, interesting cases) live beside them under other names
and are never touched by this script. Run: python3 fuzz/tools/make-seeds.py
"""
import hashlib, json, os, random, struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "corpora", "fuzz")

def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)

def sha256(b): return "sha256:" + hashlib.sha256(b).hexdigest()
def sha512(b): return "sha512:" + hashlib.sha512(b).hexdigest()

H64 = "a" * 64
# digest
for name, s in {
    "sha256-empty": sha256(b""), "sha512-empty": sha512(b""), "sha256-upper": "sha256:" + "A" * 64,
    "sha256-short": "sha256:" + "a" * 63, "sha256-long": "sha256:" + "a" * 65,
    "sha512-with-256-hex": "sha512:" + H64, "md5": "md5:d41d8cd98f00b204e9800998ecf8427e",
    "b64u": "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564", "no-colon": "sha256",
    "empty-enc": "sha256:", "empty-alg": ":" + H64, "double-colon": "sha256::" + H64,
    "sep-end": "sha+:abc", "uppercase-alg": "SHA256:" + H64, "slash": "sha256:ab/c",
    "newline": "sha256:" + H64 + "\n", "multi-sep": "a.b_c-d+e:xyz=", "empty": "",
}.items():
    put("digest", name, s)

# digest_verify: control byte (bit0 = sha512, rest = chunk step) + body
for name, data in {
    "sha256-empty": b"\x00", "sha512-empty": b"\x01", "sha256-chunked": b"\x06hello world, in chunks",
    "sha512-bytewise": b"\x03" + bytes(range(256)), "sha256-block-edge": b"\x80" + b"x" * 64,
    "sha512-block-edge": b"\x81" + b"y" * 128,
}.items():
    put("digest_verify", name, data)

# reference
for name, s in {
    "simple": "library/ubuntu", "deep": "a/b/c/d", "seps": "a.b_c__d-e---f/x", "triple-underscore": "a___b",
    "dot-dot": "a..b", "upper": "Library/Ubuntu", "trailing-slash": "a/", "leading-slash": "/a",
    "max-name": "a" * 255, "over-name": "a" * 256, "tag": "v1.2.3", "tag-underscore": "_x",
    "tag-dot-start": ".a", "tag-max": "t" * 128, "tag-over": "t" * 129, "name-tag": "library/ubuntu:22.04",
    "name-digest": "library/ubuntu@" + sha256(b""), "ref-digest": sha256(b"x"),
    "ref-bad-digest": "sha256:xyz", "unicode": "caf\u00e9/r\u00e9po", "lines": "a\nB\n_c\n-d\na/b:c",
}.items():
    put("reference", name, s)

# range: optional 8-byte little-endian total + header text
def rng(total, s): return struct.pack("<Q", total) + s.encode()
for name, data in {
    "from-to": rng(10, "bytes=0-9"), "from": rng(10, "bytes=5-"), "suffix": rng(10, "bytes=-3"),
    "suffix-big": rng(10, "bytes=-30"), "suffix-zero": rng(10, "bytes=-0"), "beyond": rng(10, "bytes=10-20"),
    "empty-total": rng(0, "bytes=0-0"), "spaces": rng(10, " Bytes = 1 - 2 "), "multi": rng(10, "bytes=0-1,3-4"),
    "reversed": rng(10, "bytes=5-4"), "overflow": rng(3, "bytes=99999999999999999999999-"),
    "max-total": struct.pack("<Q", 2**64 - 1) + b"bytes=-1", "items": rng(10, "items=0-1"),
    "content-range": rng(10, "0-0\n10-19\n-1\n0-\n99999999999999999999999-1\n+0-1"),
    "counts": rng(10, "0\n12\n+1\n-1\n99999999999999999999999\napplication/json; charset=utf-8"),
    "short": b"bytes=0-1",
}.items():
    put("range", name, data)

# link: free text, lines "target|rel"
for name, s in {
    "next": '</v2/fz/r0/tags/list?n=2&last=b>; rel="next"',
    "two": '</v2/a/tags/list?n=1&last=a>; rel="next", <https://example.invalid/x>; rel="prev"',
    "absolute": '<http://127.0.0.1:5000/v2/_catalog?n=1&last=a>; rel="next"',
    "unquoted-rel": "</x>; rel=next", "no-close": "</x; rel=next", "empty": "<>", "lines": "/a|next\n/b|prev next\n|",
    "upload-location": "/v2/fz/r0/blobs/uploads/0123-abcd?_state=xyz&digest=sha256:00",
    "foreign-location": "http://other.invalid:81/v2/x/blobs/uploads/1",
    "dot-segments": "/v2/a/../b/./blobs/uploads/%3Cupload%3E?x=%3Cv%3E",
    "scheme-relative": "//127.0.0.1:5000/v2/x",
}.items():
    put("link", name, s)

# observe: control byte (bits 0-2 endpoint, 3-5 status, 6 HEAD) + body
EP = {"end-2": 0, "end-3": 1, "end-8a": 2, "end-8b": 3, "end-12a": 4, "end-12b": 5, "catalog": 6, "end-1": 7}
ST = {200: 0, 201: 1, 202: 2, 206: 3, 400: 4, 404: 5, 416: 6, 500: 7}
def obs(ep, st, body, head=False): return bytes([EP[ep] | ST[st] << 3 | (0x40 if head else 0)]) + body.encode()
for name, data in {
    "blob": obs("end-2", 200, "blob bytes"), "tags": obs("end-8a", 200, '{"name":"a/b","tags":["a","b"]}'),
    "tags-null": obs("end-8b", 200, '{"name":"a/b","tags":null}'),
    "referrers": obs("end-12a", 200, json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256(b"m"), "size": 3, "artifactType": "x", "annotations": {"k": "v"}}]})),
    "catalog": obs("catalog", 200, '{"repositories":["a","b/c"]}'),
    "errors": obs("end-3", 404, '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"m","detail":{}}]}'),
    "errors-bad": obs("end-3", 400, '{"errors":"nope"}'), "html": obs("end-1", 500, "<html>oops</html>"),
    "head": obs("end-2", 200, "ignored", head=True), "range": obs("end-2", 206, "partial"),
}.items():
    put("observe", name, data)

# scenario
put("scenario", "monolithic", '''[meta]
title = "monolithic push"
seed = 42

[content]
blobs = [{ size = 10, seed = 1 }]

[[ops]]
op = "push_blob"
repo = 0
blob = 0
method = "monolithic"

[[expect]]
op = 0
label = "put"
status = [201]
''')
put("scenario", "big-seed", '''[content]
blobs = [{ size = 0, seed = "18446744073709551615", algo = "sha512" }]
''')
put("scenario", "bad-blob-ref", '''[[ops]]
op = "push_blob"
repo = 0
blob = 3
method = "monolithic"
''')
put("scenario", "unknown-field", '[meta]\ntitle = "x"\nbogus = 1\n')
put("scenario", "not-toml", "[[ops\nop = ")
put("scenario", "empty", "")

# manifest: control byte (bits 0-2 content type, bits 3-4 reference: tag/tag/sha256/sha512) + body
CFG = b"{}"
LAYER = b"ocidiff fuzz layer\n"
def desc(mt, b): return {"mediaType": mt, "digest": sha256(b), "size": len(b)}
img = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
       "config": desc("application/vnd.oci.image.config.v1+json", CFG),
       "layers": [desc("application/vnd.oci.image.layer.v1.tar", LAYER)]}
img_b = json.dumps(img).encode()
idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
       "manifests": [desc("application/vnd.oci.image.manifest.v1+json", img_b)]}
def man(ct, ref, body): return bytes([ct | ref << 3]) + (body if isinstance(body, bytes) else json.dumps(body).encode())
for name, data in {
    "image-by-tag": man(0, 0, img_b), "image-by-digest": man(0, 2, img_b), "image-sha512": man(0, 3, img_b),
    "image-no-ct": man(6, 0, img_b), "image-ct-params": man(4, 0, img_b), "image-ct-mismatch": man(1, 0, img_b),
    "index": man(1, 0, idx), "index-no-ct": man(6, 0, idx),
    "subject": man(0, 0, dict(img, subject=desc("application/vnd.oci.image.manifest.v1+json", img_b), artifactType="x/y")),
    "docker": man(2, 0, dict(img, mediaType="application/vnd.docker.distribution.manifest.v2+json")),
    "missing-blob": man(0, 0, dict(img, layers=[desc("x", b"absent")])),
    "schema1": man(0, 0, dict(img, schemaVersion=1)), "not-json": man(0, 0, b"{not json"),
    "array": man(5, 0, b"[]"), "bad-digest": man(0, 0, dict(img, config={"mediaType": "x", "digest": "sha256:xyz", "size": 2})),
    "negative-size": man(0, 0, dict(img, config=dict(img["config"], size=-1))),
    "layers-not-array": man(0, 0, dict(img, layers={})), "infer-nothing": man(6, 0, {"schemaVersion": 2}),
    "mediatype-number": man(6, 0, dict(img, mediaType=7)), "mediatype-ctl": man(6, 0, dict(img, mediaType="a\nb")),
    "deep-nesting": man(5, 0, b'{"schemaVersion":2,"x":' + b"[" * 200 + b"]" * 200 + b"}"),
}.items():
    put("manifest", name, data)

# www_authenticate: lines host / name / Authorization / token query
import base64
def basic(u, p): return "Basic " + base64.b64encode(f"{u}:{p}".encode()).decode()
for name, s in {
    "plain": "127.0.0.1:5000\na/b", "good-basic": f"localhost\nlibrary/x\n{basic('u','p')}\nscope=repository:library/x:pull,push&service=reference-registry",
    "bad-basic": f"h\na\n{basic('u','x')}\nscope=repository:a:pull", "bearer-garbage": "h\na\nBearer abc.def\n",
    "quote-host": 'ev"il\na/b\n', "no-host": "\na/b\nBasic !!!\n", "catalog-scope": "h\n_catalog\n\nscope=registry:catalog:*",
    "bearer-challenge": 'Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:a/b:pull,push"',
}.items():
    put("www_authenticate", name, s)

# registry: bytes decoded with `arbitrary` into a sequence of ops (any bytes are valid);
# deterministic pseudo-random seeds of several sizes. Fuzzing adds better ones.
r = random.Random(6)
for n in (16, 64, 256, 1024, 4096):
    for k in range(2):
        put("registry", f"random-{n}-{k}", bytes(r.getrandbits(8) for _ in range(n)))
