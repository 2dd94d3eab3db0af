//! Manual approval, as the approval function does it: the request (an SNS email with a review link), the link's
//! token (random, stored hashed, single use), and the pages a person decides on (GET shows, only POST decides).

pub mod message;
pub mod page;
pub mod token;

pub use message::{Links, approval_email};
pub use page::Page;
pub use token::{LinkToken, RandomError, same_hash};
