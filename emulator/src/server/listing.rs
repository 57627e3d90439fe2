//! The list endpoints' shared machinery: `filter`, `sort` and paging parameters applied to one
//! kind of site content, and the `<pagination>` answer.

use std::cmp::Ordering;

use super::context::{Ctx, SCOPE_CONTENT_READ};
use super::response::Reply;
use crate::filter::{self, Cond, Kind};
use crate::state::{ApiError, State};
use crate::util::Query;
use crate::xml::attrs;

/// Site content that a list endpoint returns.
pub(super) trait Listed: Sized {
    /// The element wrapping the page's items (`projects`, `datasources`).
    const TAG: &'static str;
    /// Fields that can be filtered on, and their kinds.
    const FILTERS: &'static [(&'static str, Kind)];
    /// Fields that can be sorted on.
    const SORTS: &'static [&'static str];

    /// All items of this kind, on every site.
    fn all(st: &State) -> &[Self];
    fn site_id(&self) -> &str;
    /// Does the item satisfy the condition (its field is one of `FILTERS`)?
    fn matches(&self, st: &State, c: &Cond) -> bool;
    /// Order two items by `field` (one of `SORTS`), ascending.
    fn compare(&self, other: &Self, st: &State, field: &str) -> Ordering;
    fn xml(&self, st: &State) -> String;
}

/// `GET sites/{site}/<T::TAG>`: the caller's page of the site's items.
pub(super) fn list<T: Listed>(ctx: &mut Ctx, site: &str) -> Result<Reply, ApiError> {
    ctx.scoped_auth(site, &[SCOPE_CONTENT_READ])?;
    let q = Query::parse(&ctx.query);
    let conds = filter::parse_filter(q.get("filter"))?;
    filter::check_ops(&conds, T::FILTERS)?;
    let sort = filter::parse_sort(q.get("sort"), T::SORTS)?;
    let (size, number) = filter::page(&q, ctx.sh.cfg.max_page_size)?;
    let st = ctx.sh.lock();
    let mut items: Vec<&T> = T::all(&st)
        .iter()
        .filter(|x| x.site_id() == site)
        .filter(|x| conds.iter().all(|c| x.matches(&st, c)))
        .collect();
    // Stable sorts, last key first: the first key ends up the primary one.
    for (f, desc) in sort.iter().rev() {
        items.sort_by(|a, b| {
            let o = a.compare(b, &st, f);
            if *desc {
                o.reverse()
            } else {
                o
            }
        });
    }
    let mut out = pagination(number, size, items.len());
    out.push_str(&format!("<{}>", T::TAG));
    for x in filter::slice(&items, size, number) {
        out.push_str(&x.xml(&st));
    }
    out.push_str(&format!("</{}>", T::TAG));
    Ok(Reply::xml(200, &out))
}

fn pagination(number: u32, size: u32, total: usize) -> String {
    format!(
        "<pagination{}/>",
        attrs(&[
            ("pageNumber", &number.to_string()),
            ("pageSize", &size.to_string()),
            ("totalAvailable", &total.to_string())
        ])
    )
}
