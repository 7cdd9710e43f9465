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

import sys

import boto3


def main():
    endpoint = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    for i in range(n):
        user = f"user-{i:03}"
        iam.create_user(UserName=user)
        shape = i % 5
        if shape in (0, 1):
            iam.create_login_profile(UserName=user, Password="correct-horse-battery-staple-1A!")
        if shape == 0:
            serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=f"{user}-mfa")[
                "VirtualMFADevice"
            ]["SerialNumber"]
            iam.enable_mfa_device(
                UserName=user,
                SerialNumber=serial,
                AuthenticationCode1="123456",
                AuthenticationCode2="654321",
            )
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
