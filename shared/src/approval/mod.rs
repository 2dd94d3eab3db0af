//! Manual approval's link tokens: random, sent once in the email's link, stored hashed, single use. The email and
//! the pages a person decides on are in [`crate::present`].

pub mod token;

pub use token::{LinkToken, RandomError, same_hash};
