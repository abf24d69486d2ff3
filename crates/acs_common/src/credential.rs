//! [`CommunicationTokenCredential`]: a user access token that can refresh itself.
//!
//! Client applications (chat, calling) authenticate with a Communication Services *user access
//! token*, a JWT issued by the Identity API. The credential either holds one fixed token or asks a
//! [`TokenRefresher`] for new ones:
//!
//! - **On demand:** [`get_token`](CommunicationTokenCredential::get_token) calls the refresher when
//!   there is no token yet or the current one expires within
//!   [`ON_DEMAND_REFRESH_WINDOW`] (2 minutes).
//! - **Proactively** (opt-in): a background task refreshes the token
//!   [`PROACTIVE_REFRESH_WINDOW`] (10 minutes) before it expires. When a fresh token already
//!   expires within that window, the next refresh happens after half of its remaining lifetime, so
//!   short-lived tokens do not cause a tight refresh loop. A failing proactive refresh is logged
//!   and not retried; scheduling resumes after the next successful on-demand refresh.
//! - Concurrent callers share one refresh: the refresher is never called twice at the same time.
//! - A refresher that returns an already expired token is an error.
//! - A static token is returned unchanged, even when it has expired.
//! - After [`dispose`](CommunicationTokenCredential::dispose) the timer is stopped and every
//!   `get_token` fails.
//!
//! Tokens are held as [`Secret`], so `Debug` output never shows them.
//!
//! ```no_run
//! use acs_common::credential::{
//!     parse_token, CommunicationTokenCredential, CommunicationTokenRefreshOptions,
//! };
//!
//! # async fn fetch_token_from_my_backend() -> azure_core::Result<String> { unimplemented!() }
//! # async fn example() -> azure_core::Result<()> {
//! let options = CommunicationTokenRefreshOptions::new(|| async {
//!     // Ask your own service for a fresh token for the signed-in user.
//!     parse_token(fetch_token_from_my_backend().await?)
//! })
//! .with_refresh_proactively(true);
//! let credential = CommunicationTokenCredential::with_refresh_options(options)?;
//! let token = credential.get_token().await?;
//! println!("token expires on {}", token.expires_on);
//! # Ok(())
//! # }
//! ```

use crate::clock::{Clock, SystemClock};
use async_trait::async_trait;
use azure_core::{
    credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions},
    error::{Error, ErrorKind},
};
use base64::{
    engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD},
    Engine as _,
};
use std::{
    fmt,
    future::Future,
    sync::{Arc, Mutex, MutexGuard, PoisonError, Weak},
};
use time::{Duration, OffsetDateTime};
use tokio::{sync::Notify, task::JoinHandle};

/// A token that expires within this window is refreshed by `get_token`.
pub const ON_DEMAND_REFRESH_WINDOW: Duration = Duration::minutes(2);

/// With proactive refreshing, a token is refreshed this long before it expires.
pub const PROACTIVE_REFRESH_WINDOW: Duration = Duration::minutes(10);

/// The message of the error returned when the refresher hands back an expired token.
pub const EXPIRED_REFRESHED_TOKEN_MESSAGE: &str =
    "The token returned from the token refresher is expired.";

/// The message of the error returned by a disposed credential.
pub const DISPOSED_MESSAGE: &str =
    "The CommunicationTokenCredential has been disposed and cannot be used anymore.";

/// Supplies fresh user access tokens to a [`CommunicationTokenCredential`].
///
/// Any `Fn() -> impl Future<Output = azure_core::Result<AccessToken>>` closure is a refresher.
/// Errors it returns are passed on to the caller of
/// [`get_token`](CommunicationTokenCredential::get_token). Use [`parse_token`] to turn a bare JWT
/// into an [`AccessToken`].
#[async_trait]
pub trait TokenRefresher: Send + Sync {
    /// Fetches a new token.
    async fn refresh(&self) -> azure_core::Result<AccessToken>;
}

#[async_trait]
impl<F, Fut> TokenRefresher for F
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = azure_core::Result<AccessToken>> + Send,
{
    async fn refresh(&self) -> azure_core::Result<AccessToken> {
        (self)().await
    }
}

/// Reads the expiry (`exp` claim) of a user access token (a JWT) and wraps both in an
/// [`AccessToken`].
///
/// # Errors
///
/// Returns an [`ErrorKind::Credential`] error starting with `Invalid token` when the token is
/// empty, does not have three `.`-separated parts, or its payload is not base64 JSON with a numeric
/// `exp`. The message never contains the token.
///
/// ```
/// use acs_common::credential::parse_token;
///
/// // Payload {"exp":32503680000} (1 January 3000).
/// let token = parse_token("eyJhbGciOiJub25lIn0.eyJleHAiOjMyNTAzNjgwMDAwfQ.c2ln")?;
/// assert_eq!(token.expires_on.year(), 3000);
/// assert!(parse_token("foo.bar.foobar").is_err());
/// # Ok::<(), azure_core::Error>(())
/// ```
pub fn parse_token(token: impl Into<String>) -> azure_core::Result<AccessToken> {
    let token = token.into();
    let expires_on = jwt_expiry(&token)?;
    Ok(AccessToken::new(Secret::new(token), expires_on))
}

fn jwt_expiry(token: &str) -> azure_core::Result<OffsetDateTime> {
    let invalid =
        |why: &str| Error::with_message(ErrorKind::Credential, format!("Invalid token: {why}"));
    if token.trim().is_empty() {
        return Err(invalid("token must not be empty."));
    }
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("expected a JWT made of three '.'-separated parts."));
    };
    let payload = payload.trim_end_matches('=');
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .or_else(|_| STANDARD_NO_PAD.decode(payload))
        .map_err(|_| invalid("the JWT payload is not base64url."))?;
    let claims: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| invalid("the JWT payload is not JSON."))?;
    let exp = claims.get("exp").ok_or_else(|| invalid("the JWT has no 'exp' claim."))?;
    let nanos = if let Some(seconds) = exp.as_i64() {
        i128::from(seconds) * 1_000_000_000
    } else if let Some(seconds) = exp.as_f64().filter(|s| s.is_finite()) {
        // Saturating cast; out-of-range values are rejected below.
        (seconds * 1e9) as i128
    } else {
        return Err(invalid("the JWT 'exp' claim is not a number."));
    };
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|_| invalid("the JWT 'exp' claim is out of range."))
}

/// How a refreshing [`CommunicationTokenCredential`] gets and refreshes its tokens.
///
/// ```
/// use acs_common::credential::{parse_token, CommunicationTokenRefreshOptions};
///
/// let options = CommunicationTokenRefreshOptions::new(|| async {
///     parse_token("eyJhbGciOiJub25lIn0.eyJleHAiOjMyNTAzNjgwMDAwfQ.c2ln")
/// })
/// .with_refresh_proactively(true);
/// assert!(options.refresh_proactively());
/// ```
#[derive(Clone)]
pub struct CommunicationTokenRefreshOptions {
    refresher: Arc<dyn TokenRefresher>,
    initial_token: Option<Secret>,
    refresh_proactively: bool,
    clock: Arc<dyn Clock>,
}

impl CommunicationTokenRefreshOptions {
    /// Options that refresh on demand with `refresher`, without an initial token.
    pub fn new(refresher: impl TokenRefresher + 'static) -> Self {
        Self::with_refresher(Arc::new(refresher))
    }

    /// Like [`new`](Self::new), for a refresher that is already shared.
    pub fn with_refresher(refresher: Arc<dyn TokenRefresher>) -> Self {
        Self {
            refresher,
            initial_token: None,
            refresh_proactively: false,
            clock: Arc::new(SystemClock),
        }
    }

    /// Uses `token` (a JWT) until it needs refreshing, instead of calling the refresher first.
    #[must_use]
    pub fn with_initial_token(mut self, token: impl Into<String>) -> Self {
        self.initial_token = Some(Secret::new(token.into()));
        self
    }

    /// Turns proactive background refreshing on or off (off by default).
    ///
    /// Proactive refreshing needs a Tokio runtime when the credential is created.
    #[must_use]
    pub fn with_refresh_proactively(mut self, refresh_proactively: bool) -> Self {
        self.refresh_proactively = refresh_proactively;
        self
    }

    /// Reads the current time from `clock` (the system clock by default).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Whether proactive refreshing is on.
    pub fn refresh_proactively(&self) -> bool {
        self.refresh_proactively
    }
}

impl fmt::Debug for CommunicationTokenRefreshOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommunicationTokenRefreshOptions")
            .field("initial_token", &self.initial_token)
            .field("refresh_proactively", &self.refresh_proactively)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// A Communication Services user access token credential; see the [module documentation](self).
///
/// Clones share the same token, refresher and timer. The background timer also stops when the
/// last clone is dropped.
#[derive(Clone)]
pub struct CommunicationTokenCredential {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    /// Held while the refresher runs, so concurrent callers share one refresh.
    refresh_lock: tokio::sync::Mutex<()>,
    refresher: Option<Arc<dyn TokenRefresher>>,
    refresh_proactively: bool,
    clock: Arc<dyn Clock>,
    /// Signalled when an on-demand refresh stored a new token, so the timer reschedules.
    token_changed: Arc<Notify>,
    timer: Mutex<Option<JoinHandle<()>>>,
}

struct State {
    token: Option<AccessToken>,
    disposed: bool,
}

impl CommunicationTokenCredential {
    /// Creates a credential that always returns `token` (a JWT), even after it expires.
    ///
    /// # Errors
    ///
    /// Fails when `token` is not a JWT with a numeric `exp` claim; see [`parse_token`].
    pub fn new(token: impl Into<String>) -> azure_core::Result<Self> {
        Ok(Self::from_access_token(parse_token(token)?))
    }

    /// Creates a credential that always returns `token` with the given expiry, without decoding it.
    pub fn from_access_token(token: AccessToken) -> Self {
        Self::build(Some(token), None, false, Arc::new(SystemClock))
    }

    /// Creates a credential that refreshes its token with a [`TokenRefresher`].
    ///
    /// With proactive refreshing and no (or an expiring) initial token, the first refresh starts
    /// right away in the background.
    ///
    /// # Errors
    ///
    /// Fails when the initial token is not a valid JWT, or when proactive refreshing is requested
    /// outside a Tokio runtime.
    pub fn with_refresh_options(
        options: CommunicationTokenRefreshOptions,
    ) -> azure_core::Result<Self> {
        let initial = match &options.initial_token {
            Some(token) => Some(parse_token(token.secret().to_owned())?),
            None => None,
        };
        let runtime = if options.refresh_proactively {
            Some(tokio::runtime::Handle::try_current().map_err(|_| {
                Error::with_message(
                    ErrorKind::Other,
                    "proactive token refreshing needs a Tokio runtime; create the credential inside one",
                )
            })?)
        } else {
            None
        };

        let credential = Self::build(
            initial,
            Some(options.refresher),
            options.refresh_proactively,
            options.clock,
        );
        if let Some(runtime) = runtime {
            let task = run_proactive_refresh(
                Arc::downgrade(&credential.inner),
                credential.inner.token_changed.clone(),
            );
            *lock(&credential.inner.timer) = Some(runtime.spawn(task));
        }
        Ok(credential)
    }

    fn build(
        token: Option<AccessToken>,
        refresher: Option<Arc<dyn TokenRefresher>>,
        refresh_proactively: bool,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State { token, disposed: false }),
                refresh_lock: tokio::sync::Mutex::new(()),
                refresher,
                refresh_proactively,
                clock,
                token_changed: Arc::new(Notify::new()),
                timer: Mutex::new(None),
            }),
        }
    }

    /// Returns a valid token, refreshing it first when needed.
    ///
    /// # Errors
    ///
    /// Fails when the credential was disposed, when the refresher fails (its error is returned
    /// unchanged), or when the refresher returns an expired token.
    pub async fn get_token(&self) -> azure_core::Result<AccessToken> {
        let inner = &self.inner;
        if let Some(token) = inner.usable_token()? {
            return Ok(token);
        }
        let _refreshing = inner.refresh_lock.lock().await;
        // Another caller may have refreshed while this one waited.
        if let Some(token) = inner.usable_token()? {
            return Ok(token);
        }
        let token = inner.refresh().await?;
        inner.token_changed.notify_one();
        Ok(token)
    }

    /// Stops background refreshing and forgets the token. Later calls to `get_token` fail.
    pub fn dispose(&self) {
        {
            let mut state = lock(&self.inner.state);
            state.disposed = true;
            state.token = None;
        }
        self.inner.stop_timer();
    }

    /// Whether [`dispose`](Self::dispose) has been called.
    pub fn is_disposed(&self) -> bool {
        lock(&self.inner.state).disposed
    }
}

impl Inner {
    /// The current token if `get_token` may return it without refreshing.
    fn usable_token(&self) -> azure_core::Result<Option<AccessToken>> {
        let state = lock(&self.state);
        if state.disposed {
            return Err(disposed());
        }
        if self.refresher.is_none() {
            // Static tokens are returned as they are, expired or not.
            return Ok(state.token.clone());
        }
        Ok(state
            .token
            .as_ref()
            .filter(|t| self.clock.now() < t.expires_on - ON_DEMAND_REFRESH_WINDOW)
            .cloned())
    }

    /// Calls the refresher and stores its token. The caller holds `refresh_lock`.
    async fn refresh(&self) -> azure_core::Result<AccessToken> {
        let Some(refresher) = &self.refresher else {
            // A static credential always has a token, so `get_token` never gets here.
            return Err(Error::with_message(ErrorKind::Credential, "no token is available"));
        };
        let token = refresher.refresh().await?;
        if token.expires_on <= self.clock.now() {
            return Err(Error::with_message(
                ErrorKind::Credential,
                EXPIRED_REFRESHED_TOKEN_MESSAGE,
            ));
        }
        let mut state = lock(&self.state);
        if state.disposed {
            return Err(disposed());
        }
        state.token = Some(token.clone());
        Ok(token)
    }

    /// How long the proactive timer waits before the next refresh, or `None` when disposed.
    fn next_proactive_delay(&self) -> Option<Duration> {
        let state = lock(&self.state);
        if state.disposed {
            return None;
        }
        let Some(token) = &state.token else {
            return Some(Duration::ZERO);
        };
        let remaining = token.expires_on - self.clock.now();
        Some(if remaining <= PROACTIVE_REFRESH_WINDOW {
            // Fractional backoff: the fresh token is already close to expiry.
            remaining / 2
        } else {
            remaining - PROACTIVE_REFRESH_WINDOW
        })
    }

    /// Whether the proactive timer should refresh now.
    fn needs_proactive_refresh(&self) -> bool {
        let state = lock(&self.state);
        !state.disposed
            && state
                .token
                .as_ref()
                .is_none_or(|t| self.clock.now() >= t.expires_on - PROACTIVE_REFRESH_WINDOW)
    }

    fn stop_timer(&self) {
        if let Some(timer) = lock(&self.timer).take() {
            timer.abort();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_timer();
    }
}

/// The proactive refresh loop. It holds only a weak reference, so dropping the credential ends it.
async fn run_proactive_refresh(credential: Weak<Inner>, token_changed: Arc<Notify>) {
    let mut timer_armed = true;
    loop {
        let delay = {
            let Some(inner) = credential.upgrade() else { return };
            let Some(delay) = inner.next_proactive_delay() else { return };
            delay
        };
        if timer_armed && delay.is_positive() {
            tokio::select! {
                () = tokio::time::sleep(to_std(delay)) => {}
                () = token_changed.notified() => continue,
            }
        } else if !timer_armed {
            // The last proactive refresh failed: wait for an on-demand refresh to succeed.
            token_changed.notified().await;
            timer_armed = true;
            continue;
        }

        let Some(inner) = credential.upgrade() else { return };
        let _refreshing = inner.refresh_lock.lock().await;
        if !inner.needs_proactive_refresh() {
            continue;
        }
        if let Err(error) = inner.refresh().await {
            tracing::warn!(%error, "proactive refresh of the communication token failed");
            timer_armed = false;
        }
    }
}

fn to_std(duration: Duration) -> std::time::Duration {
    // Negative durations (already expired) mean "now".
    std::time::Duration::try_from(duration).unwrap_or(std::time::Duration::ZERO)
}

fn disposed() -> Error {
    Error::with_message(ErrorKind::Credential, DISPOSED_MESSAGE)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl fmt::Debug for CommunicationTokenCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.inner.state);
        f.debug_struct("CommunicationTokenCredential")
            .field("refreshing", &self.inner.refresher.is_some())
            .field("refresh_proactively", &self.inner.refresh_proactively)
            .field("expires_on", &state.token.as_ref().map(|t| t.expires_on))
            .field("disposed", &state.disposed)
            .finish_non_exhaustive()
    }
}

/// Lets the credential authenticate `azure_core` pipelines with `Authorization: Bearer <token>`.
///
/// The scopes are ignored: a user access token carries its scopes inside.
#[async_trait]
impl TokenCredential for CommunicationTokenCredential {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        CommunicationTokenCredential::get_token(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::join_all;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use time::macros::datetime;
    use tokio::time::{advance, Instant};

    const BASE: OffsetDateTime = datetime!(2025-01-01 00:00:00 UTC);

    /// Wall-clock time that moves with Tokio's (paused) clock.
    #[derive(Debug)]
    struct TokioClock {
        start: Instant,
    }

    impl Clock for TokioClock {
        fn now(&self) -> OffsetDateTime {
            BASE + (Instant::now() - self.start)
        }
    }

    fn clock() -> Arc<TokioClock> {
        Arc::new(TokioClock { start: Instant::now() })
    }

    fn jwt(exp: OffsetDateTime) -> String {
        let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{}}}"#, exp.unix_timestamp()));
        format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2lnbmF0dXJl")
    }

    fn token_valid_for(clock: &dyn Clock, minutes: i64) -> AccessToken {
        let exp = clock.now() + Duration::minutes(minutes);
        AccessToken::new(jwt(exp), exp)
    }

    /// A refresher that counts calls and returns `make(clock)` each time.
    #[derive(Clone)]
    struct Counting {
        calls: Arc<AtomicUsize>,
    }

    impl Counting {
        fn new() -> Self {
            Self { calls: Arc::new(AtomicUsize::new(0)) }
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }

        /// A credential that refreshes on demand only, with tokens valid for `minutes`.
        fn on_demand(&self, clock: &Arc<TokioClock>, minutes: i64) -> CommunicationTokenCredential {
            CommunicationTokenCredential::with_refresh_options(
                self.fresh(clock.clone(), minutes).with_clock(clock.clone()),
            )
            .unwrap()
        }

        /// A proactively refreshing credential whose initial and fresh tokens live 20 minutes.
        fn proactive(&self, clock: &Arc<TokioClock>) -> CommunicationTokenCredential {
            CommunicationTokenCredential::with_refresh_options(
                self.fresh(clock.clone(), 20)
                    .with_clock(clock.clone())
                    .with_initial_token(
                        token_valid_for(clock.as_ref(), 20).token.secret().to_owned(),
                    )
                    .with_refresh_proactively(true),
            )
            .unwrap()
        }

        /// Refresher that issues a new token valid for `minutes` minutes on every call.
        fn fresh(&self, clock: Arc<TokioClock>, minutes: i64) -> CommunicationTokenRefreshOptions {
            let calls = self.calls.clone();
            CommunicationTokenRefreshOptions::new(move || {
                calls.fetch_add(1, Ordering::SeqCst);
                let token = token_valid_for(clock.as_ref(), minutes);
                async move { Ok(token) }
            })
        }

        /// Refresher like [`fresh`](Self::fresh) that takes a second per call: a slow token
        /// service.
        fn slow(&self, clock: Arc<TokioClock>, minutes: i64) -> CommunicationTokenRefreshOptions {
            let calls = self.calls.clone();
            CommunicationTokenRefreshOptions::new(move || {
                calls.fetch_add(1, Ordering::SeqCst);
                let clock = clock.clone();
                async move {
                    tokio::time::sleep(secs(1)).await;
                    Ok(token_valid_for(clock.as_ref(), minutes))
                }
            })
        }

        /// Refresher that issues a new token valid for 20 minutes, except on the calls (counted
        /// from 0) for which `fails` is true: those fail with an IO error saying `message`.
        fn failing(
            &self,
            clock: Arc<TokioClock>,
            fails: fn(usize) -> bool,
            message: &'static str,
        ) -> CommunicationTokenRefreshOptions {
            let calls = self.calls.clone();
            CommunicationTokenRefreshOptions::new(move || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                let token = token_valid_for(clock.as_ref(), 20);
                async move {
                    if fails(n) {
                        Err(Error::with_message(ErrorKind::Io, message))
                    } else {
                        Ok(token)
                    }
                }
            })
        }

        /// Refresher that always returns the same token.
        fn fixed(&self, token: AccessToken) -> CommunicationTokenRefreshOptions {
            let calls = self.calls.clone();
            CommunicationTokenRefreshOptions::new(move || {
                calls.fetch_add(1, Ordering::SeqCst);
                let token = token.clone();
                async move { Ok(token) }
            })
        }
    }

    /// Lets spawned tasks run after the paused clock moved.
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    async fn advance_to(clock: &TokioClock, at: std::time::Duration) {
        let elapsed = Instant::now() - clock.start;
        if at > elapsed {
            advance(at - elapsed).await;
        }
        settle().await;
    }

    const fn secs(s: u64) -> std::time::Duration {
        std::time::Duration::from_secs(s)
    }

    #[test]
    fn decodes_exp_claim() {
        // {"exp":32503680000}
        let token = parse_token("eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjMyNTAzNjgwMDAwfQ.adM").unwrap();
        assert_eq!(token.expires_on, datetime!(3000-01-01 00:00:00 UTC));
        assert_eq!(token.expires_on.unix_timestamp(), 32_503_680_000);
    }

    #[test]
    fn decodes_padded_standard_base64_and_fractional_exp() {
        // Payloads as some SDK tests build them: standard alphabet with padding, float exp.
        let payload = base64::engine::general_purpose::STANDARD.encode(r#"{"exp":1700000000.5}"#);
        let token = parse_token(format!("a.{payload}.b")).unwrap();
        assert_eq!(token.expires_on.unix_timestamp(), 1_700_000_000);
        assert_eq!(token.expires_on.millisecond(), 500);
    }

    #[test]
    fn rejects_invalid_tokens_without_echoing_them() {
        for bad in ["foo", "foo.bar", "foo.bar.foobar", "", "   ", "a.b.c.d.e", "IAmNotAToken"] {
            let err = parse_token(bad).expect_err(bad);
            assert!(matches!(err.kind(), ErrorKind::Credential), "{bad}");
            let message = err.to_string();
            assert!(message.starts_with("Invalid token"), "{bad}: {message}");
            assert!(bad.trim().is_empty() || !message.contains(bad), "{message}");
            assert!(CommunicationTokenCredential::new(bad).is_err());
        }
        let no_exp = format!("a.{}.c", URL_SAFE_NO_PAD.encode(r#"{"iat":1}"#));
        assert!(parse_token(no_exp).unwrap_err().to_string().contains("'exp'"));
        let text_exp = format!("a.{}.c", URL_SAFE_NO_PAD.encode(r#"{"exp":"soon"}"#));
        assert!(parse_token(text_exp).unwrap_err().to_string().contains("not a number"));
        let huge_exp = format!("a.{}.c", URL_SAFE_NO_PAD.encode(r#"{"exp":1e300}"#));
        assert!(parse_token(huge_exp).unwrap_err().to_string().contains("out of range"));
    }

    #[tokio::test]
    async fn static_token_is_returned_as_is() {
        let token = jwt(SystemClock.now() + Duration::hours(1));
        let credential = CommunicationTokenCredential::new(token.clone()).unwrap();
        let got = credential.get_token().await.unwrap();
        assert_eq!(got.token.secret(), token);
    }

    #[tokio::test]
    async fn static_token_returns_expired_token() {
        let token = jwt(datetime!(2000-01-01 00:00:00 UTC));
        let credential = CommunicationTokenCredential::new(token.clone()).unwrap();
        let got = credential.get_token().await.unwrap();
        assert_eq!(got.token.secret(), token);
        assert_eq!(got.expires_on, datetime!(2000-01-01 00:00:00 UTC));
    }

    #[tokio::test]
    async fn static_access_token_keeps_explicit_expiry() {
        let expires_on = datetime!(2030-01-01 00:00:00 UTC);
        let credential =
            CommunicationTokenCredential::from_access_token(AccessToken::new("opaque", expires_on));
        let got = credential.get_token().await.unwrap();
        assert_eq!((got.token.secret(), got.expires_on), ("opaque", expires_on));
    }

    #[tokio::test(start_paused = true)]
    async fn refresher_without_initial_token_is_called_once() {
        let clock = clock();
        let counting = Counting::new();
        let options = counting.fresh(clock.clone(), 60).with_clock(clock.clone());
        let credential = CommunicationTokenCredential::with_refresh_options(options).unwrap();
        assert_eq!(counting.calls(), 0, "no refresh before the first get_token");
        let first = credential.get_token().await.unwrap();
        let second = credential.get_token().await.unwrap();
        assert_eq!(first.token, second.token);
        assert_eq!(counting.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn uses_initial_token_without_calling_refresher() {
        let clock = clock();
        let counting = Counting::new();
        let initial = token_valid_for(clock.as_ref(), 60);
        let options = counting
            .fresh(clock.clone(), 120)
            .with_clock(clock.clone())
            .with_initial_token(initial.token.secret().to_owned())
            .with_refresh_proactively(true);
        let credential = CommunicationTokenCredential::with_refresh_options(options).unwrap();
        settle().await;
        let got = credential.get_token().await.unwrap();
        assert_eq!(got.token, initial.token);
        assert_eq!(counting.calls(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn without_proactive_refresh_nothing_happens_in_background() {
        let clock = clock();
        let counting = Counting::new();
        let expired = token_valid_for(clock.as_ref(), -1);
        let options = counting
            .fixed(expired.clone())
            .with_clock(clock.clone())
            .with_initial_token(expired.token.secret().to_owned());
        let _credential = CommunicationTokenCredential::with_refresh_options(options).unwrap();
        advance_to(&clock, secs(5 * 60)).await;
        assert_eq!(counting.calls(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn proactive_refresh_with_expired_initial_token_refreshes_immediately() {
        let clock = clock();
        let counting = Counting::new();
        let expired = token_valid_for(clock.as_ref(), -1);
        let options = counting
            .fresh(clock.clone(), 30)
            .with_clock(clock.clone())
            .with_initial_token(expired.token.secret().to_owned())
            .with_refresh_proactively(true);
        let credential = CommunicationTokenCredential::with_refresh_options(options).unwrap();
        settle().await;
        assert_eq!(counting.calls(), 1, "refreshed without waiting");
        let got = credential.get_token().await.unwrap();
        assert_eq!(got.expires_on, BASE + Duration::minutes(30));
        assert_eq!(counting.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn refresher_returning_expired_token_is_an_error() {
        let clock = clock();
        let counting = Counting::new();
        let options = counting.fixed(token_valid_for(clock.as_ref(), -1)).with_clock(clock.clone());
        let credential = CommunicationTokenCredential::with_refresh_options(options).unwrap();
        let err = credential.get_token().await.unwrap_err();
        assert_eq!(err.to_string(), EXPIRED_REFRESHED_TOKEN_MESSAGE);
        assert!(matches!(err.kind(), ErrorKind::Credential));
        assert_eq!(counting.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn refresher_errors_propagate_unchanged() {
        let options = CommunicationTokenRefreshOptions::new(|| async {
            Err(Error::with_message(ErrorKind::Io, "No token for you!"))
        });
        let credential = CommunicationTokenCredential::with_refresh_options(options).unwrap();
        let err = credential.get_token().await.unwrap_err();
        assert_eq!(err.to_string(), "No token for you!");
        assert!(matches!(err.kind(), ErrorKind::Io));
    }

    #[tokio::test(start_paused = true)]
    async fn disposed_credentials_fail() {
        let clock = clock();
        let with_static =
            CommunicationTokenCredential::new(jwt(BASE + Duration::hours(1))).unwrap();
        let counting = Counting::new();
        let with_refresher = counting.on_demand(&clock, 60);
        with_static.dispose();
        with_refresher.dispose();
        for credential in [&with_static, &with_refresher] {
            assert!(credential.is_disposed());
            let err = credential.get_token().await.unwrap_err();
            assert_eq!(err.to_string(), DISPOSED_MESSAGE);
        }
        assert_eq!(counting.calls(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn on_demand_refresh_only_within_two_minutes_of_expiry() {
        let clock = clock();
        let counting = Counting::new();
        let credential = counting.on_demand(&clock, 20);
        let first = credential.get_token().await.unwrap();
        assert_eq!(first.expires_on, BASE + Duration::minutes(20));

        // 3 minutes before expiry: still outside the 2-minute window.
        advance_to(&clock, secs(17 * 60)).await;
        assert_eq!(credential.get_token().await.unwrap().token, first.token);
        assert_eq!(counting.calls(), 1);

        // 1 minute before expiry: refreshed.
        advance_to(&clock, secs(19 * 60)).await;
        let second = credential.get_token().await.unwrap();
        assert_eq!(second.expires_on, BASE + Duration::minutes(39));
        assert_eq!(counting.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn on_demand_refresh_after_expiry_and_failure_propagates() {
        let clock = clock();
        let counting = Counting::new();
        let options =
            counting.failing(clock.clone(), |n| n > 0, "refresh failed").with_clock(clock.clone());
        let credential = CommunicationTokenCredential::with_refresh_options(options).unwrap();
        credential.get_token().await.unwrap();
        advance_to(&clock, secs(21 * 60)).await;
        assert_eq!(credential.get_token().await.unwrap_err().to_string(), "refresh failed");
        assert_eq!(counting.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_proactively_ten_minutes_before_expiry() {
        let clock = clock();
        let counting = Counting::new();
        let initial = token_valid_for(clock.as_ref(), 20);
        let credential = CommunicationTokenCredential::with_refresh_options(
            counting
                .fresh(clock.clone(), 20)
                .with_clock(clock.clone())
                .with_initial_token(initial.token.secret().to_owned())
                .with_refresh_proactively(true),
        )
        .unwrap();
        settle().await;
        advance_to(&clock, secs(10 * 60 - 1)).await;
        assert_eq!(counting.calls(), 0);
        advance_to(&clock, secs(10 * 60)).await;
        assert_eq!(counting.calls(), 1);
        let got = credential.get_token().await.unwrap();
        assert_eq!(got.expires_on, BASE + Duration::minutes(30));
        assert_eq!(counting.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn proactive_refreshing_keeps_scheduling() {
        let clock = clock();
        let counting = Counting::new();
        let _credential = counting.proactive(&clock);
        settle().await;
        // Each fresh token lives 20 minutes and is refreshed 10 minutes before expiry.
        for (minute, expected) in [(9, 0), (10, 1), (19, 1), (20, 2), (30, 3), (40, 4)] {
            advance_to(&clock, secs(minute * 60)).await;
            assert_eq!(counting.calls(), expected, "at minute {minute}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn dispose_cancels_the_timer() {
        let clock = clock();
        let counting = Counting::new();
        let credential = counting.proactive(&clock);
        settle().await;
        credential.dispose();
        advance_to(&clock, secs(19 * 60)).await;
        assert_eq!(counting.calls(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_credential_stops_the_timer() {
        let clock = clock();
        let counting = Counting::new();
        let credential = counting.proactive(&clock);
        settle().await;
        drop(credential);
        advance_to(&clock, secs(30 * 60)).await;
        assert_eq!(counting.calls(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn sequential_calls_refresh_once() {
        let clock = clock();
        let counting = Counting::new();
        let credential = counting.on_demand(&clock, 60);
        for _ in 0..10 {
            credential.get_token().await.unwrap();
        }
        assert_eq!(counting.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_calls_share_one_refresh() {
        let clock = clock();
        let counting = Counting::new();
        let options = counting.slow(clock.clone(), 60).with_clock(clock.clone());
        let credential = CommunicationTokenCredential::with_refresh_options(options).unwrap();
        let results = join_all((0..10).map(|_| credential.get_token())).await;
        assert_eq!(counting.calls(), 1);
        let first = results[0].as_ref().unwrap().token.clone();
        assert!(results.iter().all(|r| r.as_ref().unwrap().token == first));
    }

    #[tokio::test(start_paused = true)]
    async fn get_token_during_proactive_refresh_shares_it() {
        let clock = clock();
        let counting = Counting::new();
        let options = counting
            .slow(clock.clone(), 20)
            .with_clock(clock.clone())
            .with_refresh_proactively(true);
        let credential = CommunicationTokenCredential::with_refresh_options(options).unwrap();
        // Let the background task start its (slow) initial refresh.
        settle().await;
        assert_eq!(counting.calls(), 1);
        credential.get_token().await.unwrap();
        assert_eq!(counting.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn fractional_backoff_when_fresh_token_is_about_to_expire() {
        let clock = clock();
        let counting = Counting::new();
        // The refresher keeps returning the same 20-minute token.
        let token = token_valid_for(clock.as_ref(), 20);
        let _credential = CommunicationTokenCredential::with_refresh_options(
            counting
                .fixed(token.clone())
                .with_clock(clock.clone())
                .with_initial_token(token.token.secret().to_owned())
                .with_refresh_proactively(true),
        )
        .unwrap();
        settle().await;

        // Once at 10 minutes, then at half of the remaining lifetime each time.
        for second in 1..=1199u64 {
            advance_to(&clock, secs(second)).await;
            if second == 599 {
                assert_eq!(counting.calls(), 0);
            }
            if second == 899 {
                assert_eq!(counting.calls(), 1, "only one refresh in the first 15 minutes");
            }
        }
        // Refreshes at 600, 900, 1050, 1125, 1162.5, 1181.25, 1190.6, 1195.3, 1197.7, 1198.8 s:
        // floor(log2(1200)) = 10, as in the official tests.
        assert_eq!(counting.calls(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn failing_proactive_refresh_is_swallowed_and_resumes_after_on_demand_refresh() {
        let clock = clock();
        let counting = Counting::new();
        let options = counting
            .failing(clock.clone(), |n| n == 0, "service unavailable")
            .with_clock(clock.clone())
            .with_initial_token(token_valid_for(clock.as_ref(), 20).token.secret().to_owned())
            .with_refresh_proactively(true);
        let credential = CommunicationTokenCredential::with_refresh_options(options).unwrap();
        settle().await;

        // The proactive refresh at 10 minutes fails; the current token is still served.
        advance_to(&clock, secs(10 * 60)).await;
        assert_eq!(counting.calls(), 1);
        let still_old = credential.get_token().await.unwrap();
        assert_eq!(still_old.expires_on, BASE + Duration::minutes(20));
        // No retry while the token is outside the on-demand window.
        advance_to(&clock, secs(17 * 60)).await;
        assert_eq!(counting.calls(), 1);

        // Inside the 2-minute window get_token refreshes; proactive scheduling resumes from there.
        advance_to(&clock, secs(19 * 60)).await;
        let fresh = credential.get_token().await.unwrap();
        assert_eq!(fresh.expires_on, BASE + Duration::minutes(39));
        assert_eq!(counting.calls(), 2);
        settle().await;
        advance_to(&clock, secs(29 * 60 - 1)).await;
        assert_eq!(counting.calls(), 2);
        advance_to(&clock, secs(29 * 60)).await;
        assert_eq!(counting.calls(), 3, "proactive refresh at 39 - 10 minutes");
    }

    #[tokio::test]
    async fn implements_token_credential_ignoring_scopes() {
        let token = jwt(SystemClock.now() + Duration::hours(1));
        let credential: Arc<dyn TokenCredential> =
            Arc::new(CommunicationTokenCredential::new(token.clone()).unwrap());
        let got = credential.get_token(&["https://example/.default"], None).await.unwrap();
        assert_eq!(got.token.secret(), token);
    }

    #[tokio::test]
    async fn debug_never_shows_tokens() {
        let token = jwt(SystemClock.now() + Duration::hours(1));
        let credential = CommunicationTokenCredential::new(token.clone()).unwrap();
        credential.get_token().await.unwrap();
        let debug = format!("{credential:?}");
        assert!(!debug.contains(&token), "{debug}");
        assert!(!debug.contains("eyJ"), "{debug}");
        let options =
            CommunicationTokenRefreshOptions::new(|| async { Err(Error::from(ErrorKind::Other)) })
                .with_initial_token(token.clone());
        let debug = format!("{options:?}");
        assert!(!debug.contains("eyJ"), "{debug}");
    }

    #[test]
    fn proactive_refresh_outside_a_runtime_is_an_error_not_a_panic() {
        let options =
            CommunicationTokenRefreshOptions::new(|| async { Err(Error::from(ErrorKind::Other)) })
                .with_refresh_proactively(true);
        let err = CommunicationTokenCredential::with_refresh_options(options).unwrap_err();
        assert!(err.to_string().contains("Tokio runtime"));
    }
}
