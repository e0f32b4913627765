//! People behind the commits: the handles of a name and e-mail, identities that are one
//! person, and salted anonymous ids.

use super::*;

/// The ways one person's commits name them, to tell that two emails are one author: the
/// author name folded to lower-case ASCII letters and digits ("Mateusz Ligęza" and "Mateusz
/// Ligeza", "Minura Punchihewa" and "MinuraPunchihewa" are one), and the login of a GitHub
/// noreply address (`12345+login@users.noreply.github.com`). Handles under four characters
/// ("me", "dev") and the names machines give ("root", "ubuntu", "Your Name") tell nothing.
pub fn handles(name: &str, email: &str) -> Vec<String> {
    use unicode_normalization::UnicodeNormalization;
    let fold = |s: &str| -> String {
        s.nfkd()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let mut out = vec![fold(name)];
    if let Some(local) = email.strip_suffix("@users.noreply.github.com") {
        out.push(fold(local.split_once('+').map_or(local, |(_, login)| login)));
    }
    // Names a machine or a tool gives whoever commits ("root", "ubuntu", "Your Name") name no one.
    const GENERIC: [&str; 14] = [
        "root",
        "user",
        "admin",
        "administrator",
        "ubuntu",
        "debian",
        "developer",
        "unknown",
        "yourname",
        "localhost",
        "vagrant",
        "runner",
        "githubactions",
        "githubactionsbot",
    ];
    out.retain(|h| h.len() >= 4 && !GENERIC.contains(&h.as_str()));
    out.dedup();
    out
}

/// Each author key mapped to one key per person: keys that share a handle are one author
/// (the key kept is the first in sorted order).
pub(super) fn same_people(facts: &[CommitFacts]) -> HashMap<String, String> {
    let mut keys: Vec<&str> = facts.iter().map(|f| f.email_key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut parent: HashMap<&str, &str> = keys.iter().map(|k| (*k, *k)).collect();
    fn root<'a>(parent: &HashMap<&'a str, &'a str>, mut k: &'a str) -> &'a str {
        while parent[k] != k {
            k = parent[k];
        }
        k
    }
    let mut owner: HashMap<&str, &str> = HashMap::new();
    let mut sorted: Vec<&CommitFacts> = facts.iter().collect();
    sorted.sort_by(|a, b| a.email_key.cmp(&b.email_key));
    for f in sorted {
        for h in &f.handles {
            let k = f.email_key.as_str();
            match owner.get(h.as_str()) {
                None => {
                    owner.insert(h, k);
                }
                Some(&other) => {
                    let (a, b) = (root(&parent, other), root(&parent, k));
                    if a != b {
                        let (keep, join) = if a < b { (a, b) } else { (b, a) };
                        parent.insert(join, keep);
                    }
                }
            }
        }
    }
    keys.iter()
        .map(|k| (k.to_string(), root(&parent, k).to_string()))
        .collect()
}

/// `a-` and 8 hex digits of sha256(salt, identity): stable, not reversible
/// without guessing the e-mail address.
pub fn anon_id(salt: &str, identity: &str) -> String {
    let digest = Sha256::digest(format!("{salt}\0{identity}").as_bytes());
    format!("a-{}", &hex::encode(digest)[..8])
}
