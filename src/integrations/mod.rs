//! Framework glue, one module per cargo feature. Each turns the framework-free flows
//! ([`RequestContext`](crate::RequestContext), [`SocketSession`](crate::SocketSession)) into
//! the framework's middleware and extractors, and nothing more.

#[cfg(feature = "socketioxide")]
#[cfg_attr(docsrs, doc(cfg(feature = "socketioxide")))]
pub mod socketioxide;

#[cfg(feature = "poem")]
#[cfg_attr(docsrs, doc(cfg(feature = "poem")))]
pub mod poem;

#[cfg(feature = "salvo")]
#[cfg_attr(docsrs, doc(cfg(feature = "salvo")))]
pub mod salvo;
