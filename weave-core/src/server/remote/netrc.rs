//! The API key from `~/.netrc` (or `~/_netrc`): the password of the W&B API's host, where
//! `wandb login` stores it, used when `WANDB_API_KEY` is not set.

use std::path::Path;

/// The password of `machine` in `<home>/.netrc` (or `<home>/_netrc`).
pub(super) fn netrc_password(home: &Path, machine: &str) -> Option<String> {
    let text = [".netrc", "_netrc"]
        .iter()
        .find_map(|f| std::fs::read_to_string(home.join(f)).ok())?;
    parse_netrc(&text, machine)
}

fn parse_netrc(text: &str, machine: &str) -> Option<String> {
    let mut tokens = text.split_whitespace();
    let mut in_machine = false;
    while let Some(t) = tokens.next() {
        match t {
            "machine" => in_machine = tokens.next() == Some(machine),
            "default" => in_machine = false,
            "password" if in_machine => return tokens.next().map(str::to_string),
            "login" | "account" | "password" => {
                tokens.next();
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netrc_passwords_are_found_by_machine() {
        let text = "machine example.com login x password nope\n\
                    machine api.wandb.ai\n  login user\n  password KEY123\n";
        assert_eq!(parse_netrc(text, "api.wandb.ai").as_deref(), Some("KEY123"));
        assert_eq!(parse_netrc(text, "other"), None);
    }
}
