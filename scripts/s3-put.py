#!/usr/bin/env python3
"""The S3 server's own floor for one upload: plain PUTs of a file's bytes (one request, the whole body in
one send, SigV4 with UNSIGNED-PAYLOAD, one kept-alive connection, standard library only), timed from the
request to the end of the reply, to set beside what `clc pack` pays for its last upload (issue 19,
docs/BENCHMARKS.md 10.4).

    scripts/s3-put.py FILE [REPS] [BYTES]     (with scripts/s3-server.sh env's variables exported)

BYTES: only the first BYTES of FILE. Prints `bytes median_ms min_ms` of REPS (default 9) PUTs to
s3://$CLC_S3_TEST_BUCKET/put-floor/NAME (removed after).
"""
import datetime
import hashlib
import hmac
import http.client
import os
import sys
import time
import urllib.parse


def main():
    path = sys.argv[1]
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 9
    data = open(path, "rb").read()
    if len(sys.argv) > 3:
        data = data[: int(sys.argv[3])]
    ep = urllib.parse.urlparse(os.environ["AWS_ENDPOINT_URL"])
    key, secret = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
    region = os.environ.get("AWS_REGION", "us-east-1")
    uri = f"/{os.environ['CLC_S3_TEST_BUCKET']}/put-floor/{os.path.basename(path)}"
    host = ep.netloc
    conn = http.client.HTTPConnection(ep.hostname, ep.port)

    def hm(k, m):
        return hmac.new(k, m.encode(), hashlib.sha256).digest()

    def headers(method, length):
        now = datetime.datetime.now(datetime.timezone.utc)
        amz, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        ph = "UNSIGNED-PAYLOAD"
        signed = "host;x-amz-content-sha256;x-amz-date"
        canon = f"{method}\n{uri}\n\nhost:{host}\nx-amz-content-sha256:{ph}\nx-amz-date:{amz}\n\n{signed}\n{ph}"
        scope = f"{day}/{region}/s3/aws4_request"
        sts = f"AWS4-HMAC-SHA256\n{amz}\n{scope}\n" + hashlib.sha256(canon.encode()).hexdigest()
        k = hm(hm(hm(hm(("AWS4" + secret).encode(), day), region), "s3"), "aws4_request")
        sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
        return {
            "x-amz-date": amz,
            "x-amz-content-sha256": ph,
            "Content-Length": str(length),
            "Authorization": f"AWS4-HMAC-SHA256 Credential={key}/{scope}, SignedHeaders={signed}, Signature={sig}",
        }

    times = []
    for _ in range(reps):
        t = time.perf_counter()
        conn.request("PUT", uri, body=data, headers=headers("PUT", len(data)))
        r = conn.getresponse()
        body = r.read()
        times.append(time.perf_counter() - t)
        if r.status != 200:
            sys.exit(f"s3-put.py: PUT {uri}: HTTP {r.status}: {body[:200]!r}")
    conn.request("DELETE", uri, headers=headers("DELETE", 0))
    conn.getresponse().read()
    times.sort()
    print(f"{len(data)} {times[len(times) // 2] * 1e3:.1f} {times[0] * 1e3:.1f}")


if __name__ == "__main__":
    main()
