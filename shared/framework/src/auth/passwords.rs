//! argon2id password hashing with OWASP's recommended parameters. It hashes
//! and checks plain text into and against PHC strings; what a valid password
//! is, and how a hash is kept, are the caller's.

use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash as Phc, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

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
    /// argon2's working memory (12 MiB), allocated once and reused. A
    /// fresh allocation per hash (what `argon2`'s own hasher does) zeroes
    /// and page-faults all of it every time, and glibc's allocator let
    /// several of them stay resident: login's peak RSS was 36 MB.
    memory: Arc<Mutex<Vec<Block>>>,
    /// What [`Self::verify_nothing`] checks an attempt against: a PHC
    /// string with our parameters and a random salt, built with the hasher
    /// (no argon2 run: its expected output is all zeros, and what a check
    /// against it answers is thrown away). Built on the first unknown email
    /// instead, it made that login cost two argon2 runs (a hash, then the
    /// check), and so told that the account did not exist.
    decoy: String,
}

impl PasswordHasher {
    /// A hasher with the parameters above.
    pub fn new() -> Self {
        let params =
            Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("static argon2 parameters are valid");
        let salt = SaltString::generate(&mut OsRng);
        let decoy = Phc {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).expect("static argon2 parameters fit a PHC string"),
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&[0; Params::DEFAULT_OUTPUT_LEN]).expect("the default output length is valid")),
        };
        Self {
            decoy: decoy.to_string(),
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            memory: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// A salted argon2id hash of `password` as a PHC string, fit to store; an
    /// error means argon2 itself failed (a bug, not a bad password).
    pub fn hash(&self, password: &str) -> anyhow::Result<String> {
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_bytes = [0; 64];
        let salt_bytes = salt.as_salt().decode_b64(&mut salt_bytes).map_err(|e| anyhow::anyhow!("argon2 salt: {e}"))?;
        let mut out = [0; Params::DEFAULT_OUTPUT_LEN];
        self.raw_hash(&self.argon2, password.as_bytes(), salt_bytes, &mut out)
            .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))?;
        let phc = Phc {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(self.argon2.params()).map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("argon2 output: {e}"))?),
        };
        Ok(phc.to_string())
    }

    /// Constant-time check of `password` against the PHC string `hash`.
    /// Parameters are read from the stored hash, so hashes made with older
    /// parameters still verify; a hash that is no argon2 PHC string matches nothing.
    pub fn verify(&self, password: &str, hash: &str) -> bool {
        self.matches(password.as_bytes(), hash).unwrap_or(false)
    }

    /// `None` for a stored hash that is not an argon2 PHC string.
    fn matches(&self, password: &[u8], stored: &str) -> Option<bool> {
        let phc = Phc::new(stored).ok()?;
        let expected = phc.hash?;
        let argon2 = Argon2::new(
            Algorithm::try_from(phc.algorithm).ok()?,
            phc.version.map_or(Some(Version::default()), |v| Version::try_from(v).ok())?,
            Params::try_from(&phc).ok()?,
        );
        let mut salt = [0; 64];
        let salt = phc.salt?.decode_b64(&mut salt).ok()?;
        let mut out = vec![0; expected.len()];
        self.raw_hash(&argon2, password, salt, &mut out).ok()?;
        // `Output`'s equality is constant-time.
        Some(Output::new(&out).ok()? == expected)
    }

    /// argon2 into `out`, in the reused working memory.
    fn raw_hash(&self, argon2: &Argon2, password: &[u8], salt: &[u8], out: &mut [u8]) -> argon2::Result<()> {
        #[cfg(test)]
        tests::ARGON2_RUNS.with(|runs| runs.set(runs.get() + 1));
        let mut memory = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
        let blocks = argon2.params().block_count();
        if memory.len() != blocks {
            // Only a hash stored with other parameters resizes it.
            *memory = vec![Block::default(); blocks];
        }
        argon2.hash_password_into_with_memory(password, salt, out, memory.as_mut_slice())
    }

    /// Spends the same time as a real check (one argon2 run with our
    /// parameters, from the first call on) against a hash that never
    /// matches, so a login for an unknown email is not faster or slower
    /// than a login with a wrong password (no account enumeration by timing).
    pub fn verify_nothing(&self, password: &str) {
        let _ = self.verify(password, &self.decoy);
    }
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    thread_local! {
        /// argon2 computations (hashes and checks) on this thread.
        pub(super) static ARGON2_RUNS: Cell<usize> = const { Cell::new(0) };
    }

    fn argon2_runs() -> usize {
        ARGON2_RUNS.with(Cell::get)
    }

    /// A login for an unknown email costs one argon2 run, as a known
    /// email's does, from the first login a container serves: the decoy is
    /// ready when the hasher is, and is not hashed on first use (which made
    /// that login twice as slow, and told the account did not exist).
    #[test]
    fn every_unknown_email_costs_exactly_one_argon2_run() {
        let before = argon2_runs();
        let hasher = PasswordHasher::new();
        assert_eq!(argon2_runs(), before, "building the hasher (and its decoy) runs no argon2");
        let attempt = "a guess at someone's password";
        hasher.verify_nothing(attempt);
        assert_eq!(argon2_runs() - before, 1, "argon2 runs of the first unknown-email login");
        hasher.clone().verify_nothing(attempt);
        assert_eq!(argon2_runs() - before, 2, "argon2 runs after the second");
    }

    /// The decoy check costs what a real one does: same algorithm and
    /// parameters as the hashes the hasher stores.
    #[test]
    fn the_decoy_has_the_parameters_of_a_stored_hash() {
        let hasher = PasswordHasher::new();
        let stored = hasher.hash("correct horse battery").unwrap();
        let prefix = |phc: &str| phc.rsplitn(3, '$').nth(2).unwrap().to_owned();
        assert_eq!(prefix(&hasher.decoy), prefix(&stored));
        assert!(hasher.decoy.starts_with("$argon2id$v=19$m=12288,t=3,p=1$"), "{}", hasher.decoy);
        assert!(!hasher.verify("a guess", &hasher.decoy));
    }

    #[test]
    fn hashes_with_argon2id_and_owasp_parameters() {
        let hasher = PasswordHasher::new();
        let hash = hasher.hash("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=12288,t=3,p=1$"), "{hash}");
    }

    #[test]
    fn verifies_only_the_right_password() {
        let hasher = PasswordHasher::new();
        let phrase = "correct horse battery";
        let hash = hasher.hash(phrase).unwrap();
        assert!(hasher.verify(phrase, &hash));
        assert!(!hasher.verify("Correct horse battery", &hash));
        assert!(!hasher.verify(phrase, "not a phc string"));
    }

    /// Hashes stored before the working memory was reused (by argon2's own
    /// hasher), and with older parameters, still verify; and argon2's own
    /// verifier accepts the hashes made now.
    #[test]
    fn hashes_agree_with_argon2s_own_hasher_in_both_directions() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let hasher = PasswordHasher::new();
        let phrase = "correct horse battery";
        let salt = SaltString::generate(&mut OsRng);
        for params in [Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None), Params::new(19 * 1024, 2, 1, None)] {
            let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.unwrap())
                .hash_password(b"correct horse battery", &salt)
                .unwrap()
                .to_string();
            assert!(hasher.verify(phrase, &theirs), "{theirs}");
            assert!(!hasher.verify("correct horse batterz", &theirs));
        }
        let ours = hasher.hash(phrase).unwrap();
        let phc = Phc::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse battery", &phc).is_ok());
        // After a hash with other parameters, the reused memory still serves ours.
        assert!(hasher.verify(phrase, &ours));
    }

    #[test]
    fn salts_every_hash() {
        let hasher = PasswordHasher::new();
        let phrase = "correct horse battery";
        assert_ne!(hasher.hash(phrase).unwrap(), hasher.hash(phrase).unwrap());
    }
}
