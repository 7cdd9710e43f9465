"""Seeds moto's IAM (one account) with N IAM users for the comparison benchmarks, with boto3.

Usage: seed_users.py ENDPOINT [N]   (default 50)

Every user gets one of five shapes, by index:
  0: console password and a virtual MFA device, one active access key
  1: console password without MFA (fails "MFA for console access")
  2: two active access keys, no password
  3: one inactive access key
  4: no credentials at all
so every check the benchmarks compare has both passing and failing users. Prints the number of
users created.
"""

import os
import sys

# The tests' moto helpers: the same client and virtual MFA set-up.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "moto"))
from iam import client, enable_virtual_mfa  # noqa: E402


def main():
    endpoint = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    iam = client(endpoint)
    for i in range(n):
        user = f"user-{i:03}"
        iam.create_user(UserName=user)
        shape = i % 5
        if shape in (0, 1):
            iam.create_login_profile(UserName=user, Password="correct-horse-battery-staple-1A!")
        if shape == 0:
            enable_virtual_mfa(iam, user)
        if shape in (0, 2):
            iam.create_access_key(UserName=user)
        if shape == 2:
            iam.create_access_key(UserName=user)
        if shape == 3:
            key = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
            iam.update_access_key(UserName=user, AccessKeyId=key, Status="Inactive")
    print(n)


if __name__ == "__main__":
    main()
