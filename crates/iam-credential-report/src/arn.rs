//! IAM ARNs: the report names each user by ARN, and the account id is read from them; the
//! config's role ARNs are checked with the same parser.

/// The parts of an IAM ARN, `arn:PARTITION:iam:REGION:ACCOUNT:RESOURCE` (REGION is empty in
/// IAM's own ARNs). Only the shape is checked: callers judge the parts they use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IamArn<'a> {
    /// `aws`, `aws-us-gov`, `aws-cn`...
    pub partition: &'a str,
    /// The region field.
    pub region: &'a str,
    /// The account id field.
    pub account: &'a str,
    /// What follows the account: `root`, `user/alice`, `role/path/name`.
    pub resource: &'a str,
}

/// Splits an IAM ARN into its parts; `None` when it is not one.
pub fn parse_iam_arn(arn: &str) -> Option<IamArn<'_>> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(region), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    Some(IamArn {
        partition,
        region,
        account,
        resource,
    })
}

/// The account id in an IAM ARN (`arn:aws:iam::123456789012:user/alice`), in any partition.
pub fn account_id_of(arn: &str) -> Option<&str> {
    let account = parse_iam_arn(arn)?.account;
    (!account.is_empty() && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

/// Twelve digits, as AWS writes account ids.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Characters IAM allows in role names and session names (`[\w+=,.@-]`).
pub fn is_iam_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// Reads the account id out of an IAM role ARN, `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`.
pub fn role_account(arn: &str) -> Option<&str> {
    let IamArn {
        partition,
        region: "",
        account,
        resource,
    } = parse_iam_arn(arn)?
    else {
        return None;
    };
    let name = resource.strip_prefix("role/")?;
    let name_ok = !name.is_empty()
        && !name.starts_with('/')
        && !name.ends_with('/')
        && name.chars().all(|c| is_iam_name_char(c) || c == '/');
    (partition.starts_with("aws") && is_account_id(account) && name_ok).then_some(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns() {
        assert_eq!(
            role_account("arn:aws:iam::111111111111:role/a"),
            Some("111111111111")
        );
        assert_eq!(
            role_account("arn:aws-us-gov:iam::111111111111:role/p/a"),
            Some("111111111111")
        );
        for bad in [
            "arn:aws:iam::111111111111:user/a",
            "arn:aws:iam::11111111111:role/a",
            "arn:aws:sts::111111111111:role/a",
            "arn:aws:iam::111111111111:role/",
            "arn:aws:iam:eu-west-1:111111111111:role/a",
            "role/a",
        ] {
            assert_eq!(role_account(bad), None, "{bad}");
        }
    }

    #[test]
    fn account_ids_come_from_arns() {
        assert_eq!(
            account_id_of("arn:aws:iam::123456789012:root"),
            Some("123456789012")
        );
        assert_eq!(
            account_id_of("arn:aws-us-gov:iam::123456789012:user/a/b"),
            Some("123456789012")
        );
        assert_eq!(account_id_of("arn:aws:s3:::bucket"), None);
        assert_eq!(account_id_of("alice"), None);
    }
}
