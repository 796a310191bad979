#!/usr/bin/env python3
"""Writes N demo links as CSV (code,target) to stdout.

Codes are 7-character base62 strings, distinct by construction: i * P mod 62^7
is a bijection for P coprime with 62. Targets are 40 to 120 bytes.
Usage: deploy/gen-links.py N > links.csv
"""
import sys

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SPACE = 62 ** 7
P = 2_147_483_647  # prime, coprime with 62


def code(i: int) -> str:
    x = (i * P + 12345) % SPACE
    out = []
    for _ in range(7):
        x, r = divmod(x, 62)
        out.append(ALPHABET[r])
    return "".join(out)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    w = sys.stdout.write
    w("code,target\n")
    for i in range(n):
        w(f"{code(i)},https://example.com/{i}/{'p' * (20 + (i * 7919) % 80)}\n")


if __name__ == "__main__":
    main()
