//! argon2id password hashing with OWASP's recommended parameters.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash as Phc, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use domain::{Password, PasswordHash};

/// OWASP Password Storage Cheat Sheet, argon2id option "m=12 MiB, t=3, p=1":
/// as strong as the 19 MiB/t=2 option, and it keeps a login Lambda's peak
/// memory low.
const MEMORY_KIB: u32 = 12 * 1024;
const ITERATIONS: u32 = 3;
const PARALLELISM: u32 = 1;

/// Hashes new passwords and checks login attempts; hashes are PHC strings
/// with their own salt and parameters. Each call takes tens of milliseconds
/// of CPU on purpose.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
}

impl PasswordHasher {
    /// A hasher with the parameters above.
    pub fn new() -> Self {
        let params =
            Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("static argon2 parameters are valid");
        Self { argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params) }
    }

    /// A salted argon2id hash of `password`, fit to store; an error means
    /// argon2 itself failed (a bug, not a bad password).
    pub fn hash(&self, password: &Password) -> anyhow::Result<PasswordHash> {
        let salt = SaltString::generate(&mut OsRng);
        let phc = self
            .argon2
            .hash_password(password.expose().as_bytes(), &salt)
            .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))?;
        Ok(PasswordHash::from_phc(phc.to_string()))
    }

    /// Constant-time check. Parameters are read from the stored hash, so
    /// hashes made with older parameters still verify.
    pub fn verify(&self, password: &Password, hash: &PasswordHash) -> bool {
        match Phc::new(hash.as_str()) {
            Ok(phc) => self.argon2.verify_password(password.expose().as_bytes(), &phc).is_ok(),
            Err(_) => false,
        }
    }

    /// Spends the same time as a real check against a hash that never
    /// matches, so a login for an unknown email is not faster than a login
    /// with a wrong password (no account enumeration by timing).
    pub fn verify_nothing(&self, password: &Password) {
        static DECOY: OnceLock<PasswordHash> = OnceLock::new();
        let decoy = DECOY.get_or_init(|| {
            let decoy = Password::parse_attempt("decoy password, never matches".into()).expect("valid decoy");
            self.hash(&decoy).expect("hashing a constant works")
        });
        let _ = self.verify(password, decoy);
    }
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_with_argon2id_and_owasp_parameters() {
        let hasher = PasswordHasher::new();
        let hash = hasher.hash(&Password::parse_new("correct horse battery".into()).unwrap()).unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=12288,t=3,p=1$"), "{}", hash.as_str());
    }

    #[test]
    fn verifies_only_the_right_password() {
        let hasher = PasswordHasher::new();
        let password = Password::parse_new("correct horse battery".into()).unwrap();
        let hash = hasher.hash(&password).unwrap();
        assert!(hasher.verify(&password, &hash));
        assert!(!hasher.verify(&Password::parse_attempt("Correct horse battery".into()).unwrap(), &hash));
        assert!(!hasher.verify(&password, &PasswordHash::from_phc("not a phc string".into())));
    }

    #[test]
    fn salts_every_hash() {
        let hasher = PasswordHasher::new();
        let password = Password::parse_new("correct horse battery".into()).unwrap();
        assert_ne!(hasher.hash(&password).unwrap(), hasher.hash(&password).unwrap());
    }
}
