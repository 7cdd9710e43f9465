"""Seeds and changes an AWS organization in moto for tests/it/many_accounts.rs, with boto3.

Usage: organization.py ENDPOINT COMMAND [ARGS]
  seed N              an organization with N member accounts, named member-00 ... (every
                      fifth one sandbox-NN); in each, assuming a role, (index % 4) + 1 IAM users
                      named alice, bob, carol, dave. Prints one line per account:
                      ID NAME USERS (the management account first, with no users created).
  add NAME USERS      one more member account with USERS users; prints ID NAME USERS
  close ID            closes a member account

moto accepts any role in any account: assume_role into arn:aws:iam::ID:role/ANY gives
credentials whose IAM calls see that account alone.
"""

import sys

import boto3

USERS = ["alice", "bob", "carol", "dave"]


def client(endpoint, service, **credentials):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=credentials.get("AccessKeyId", "testing"),
        aws_secret_access_key=credentials.get("SecretAccessKey", "testing"),
        aws_session_token=credentials.get("SessionToken"),
    )


def account_iam(endpoint, account_id):
    sts = client(endpoint, "sts")
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/seeder", RoleSessionName="seeding"
    )["Credentials"]
    return client(endpoint, "iam", **creds)


def create_account(endpoint, org, name, users):
    status = org.create_account(AccountName=name, Email=f"{name}@example.com")
    account_id = status["CreateAccountStatus"]["AccountId"]
    iam = account_iam(endpoint, account_id)
    for user in USERS[:users]:
        iam.create_user(UserName=user)
    # Every account's alice has a console password, so per-user series differ by account.
    if users:
        iam.create_login_profile(UserName="alice", Password="correct-horse-battery-staple-1A!")
    print(account_id, name, users)


def seed(endpoint, n):
    org = client(endpoint, "organizations")
    management = org.create_organization(FeatureSet="ALL")["Organization"]["MasterAccountId"]
    print(management, "management", 0)
    for i in range(n):
        name = f"sandbox-{i:02}" if i % 5 == 4 else f"member-{i:02}"
        create_account(endpoint, org, name, i % 4 + 1)


def main():
    endpoint, command, *args = sys.argv[1:]
    org = client(endpoint, "organizations")
    if command == "seed":
        seed(endpoint, int(args[0]))
    elif command == "add":
        create_account(endpoint, org, args[0], int(args[1]))
    elif command == "close":
        org.close_account(AccountId=args[0])
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
