"""Seeds and changes moto's IAM for tests/it/aws_moto.rs, with boto3.

Usage: iam.py ENDPOINT COMMAND [ARGS]
  seed                  users with passwords, access keys (one inactive), virtual MFA devices,
                        an account alias and a password policy
  deactivate-mfa USER   deactivate USER's MFA devices
  enable-mfa USER       give USER a new virtual MFA device
"""

import sys

import boto3


def client(endpoint):
    return boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def enable_virtual_mfa(iam, user, name=None):
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=name or f"{user}-mfa")[
        "VirtualMFADevice"
    ]["SerialNumber"]
    iam.enable_mfa_device(
        UserName=user,
        SerialNumber=serial,
        AuthenticationCode1="123456",
        AuthenticationCode2="654321",
    )


def seed(iam):
    # alice: console password, MFA, one active key (never used: a key handed out at setup).
    # bob:   console password, no MFA.
    # carol: no password, no MFA, two active keys.
    # dave:  console password, MFA, one inactive key.
    for user in ["alice", "bob", "carol", "dave"]:
        iam.create_user(UserName=user)
    for user in ["alice", "bob", "dave"]:
        iam.create_login_profile(UserName=user, Password="correct-horse-battery-staple-1A!")
    for user in ["alice", "dave"]:
        enable_virtual_mfa(iam, user)
    iam.create_access_key(UserName="alice")
    iam.create_access_key(UserName="carol")
    iam.create_access_key(UserName="carol")
    key = iam.create_access_key(UserName="dave")["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName="dave", AccessKeyId=key, Status="Inactive")
    iam.create_account_alias(AccountAlias="moto-example")
    iam.update_account_password_policy(
        MinimumPasswordLength=14,
        PasswordReusePrevention=5,
        RequireSymbols=True,
        RequireNumbers=True,
        RequireUppercaseCharacters=True,
        RequireLowercaseCharacters=True,
        MaxPasswordAge=90,
    )


def deactivate_mfa(iam, user):
    for device in iam.list_mfa_devices(UserName=user)["MFADevices"]:
        iam.deactivate_mfa_device(UserName=user, SerialNumber=device["SerialNumber"])
        print(device["SerialNumber"])


def main():
    endpoint, command, *args = sys.argv[1:]
    iam = client(endpoint)
    if command == "seed":
        seed(iam)
    elif command == "deactivate-mfa":
        deactivate_mfa(iam, *args)
    elif command == "enable-mfa":
        (user,) = args
        count = len(iam.list_virtual_mfa_devices()["VirtualMFADevices"])
        enable_virtual_mfa(iam, user, f"{user}-mfa-{count}")
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
