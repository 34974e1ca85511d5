//! Collects every error of one expansion, so the user sees them all at once.

use std::fmt::Display;

/// Errors found while parsing and checking; `check` must be called before it is dropped.
#[derive(Default)]
pub struct Ctxt {
    errors: Option<syn::Error>,
    checked: bool,
}

impl Ctxt {
    /// Records an error at the span of `tokens`.
    pub fn error_spanned_by<T: quote::ToTokens, M: Display>(&mut self, tokens: T, message: M) {
        self.syn_error(syn::Error::new_spanned(tokens, message));
    }

    /// Records an error.
    pub fn syn_error(&mut self, err: syn::Error) {
        match &mut self.errors {
            Some(all) => all.combine(err),
            None => self.errors = Some(err),
        }
    }

    /// Ends collection: every error combined, or `Ok`.
    pub fn check(mut self) -> syn::Result<()> {
        self.checked = true;
        match self.errors.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        if !self.checked && !std::thread::panicking() {
            panic!("Ctxt dropped without check()");
        }
    }
}
