//! `GET serverinfo`: product and REST API versions (no sign-in needed).

use super::context::Ctx;
use super::response::Reply;
use crate::util::esc;

const PRODUCT_VERSION: &str = "2025.1.0";
const PRODUCT_BUILD: &str = "20251.25.0312.1200";

pub(super) fn server_info(ctx: &Ctx) -> Reply {
    let api = &ctx.sh.cfg.api_version;
    if ctx.want_json {
        return Reply::json(
            200,
            serde_json::json!({"serverInfo": {"productVersion": {"value": PRODUCT_VERSION, "build": PRODUCT_BUILD}, "restApiVersion": api}}),
        );
    }
    Reply::xml(
        200,
        &format!(
            "<serverInfo><productVersion build=\"{PRODUCT_BUILD}\">{PRODUCT_VERSION}</productVersion><restApiVersion>{}</restApiVersion></serverInfo>",
            esc(api)
        ),
    )
}
