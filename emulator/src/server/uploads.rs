//! File uploads: `POST sites/{site}/fileUploads` (initiate) and `PUT .../fileUploads/{id}`
//! (append a chunk).

use super::body::mp_error;
use super::context::{Ctx, SCOPE_FILE_UPLOADS_CREATE};
use super::response::Reply;
use crate::multipart::{self, Sink};
use crate::state::ApiError;
use crate::util::ceil_mb;
use crate::xml::attrs;

/// Create an upload session.
pub(super) fn initiate(ctx: &mut Ctx, site: &str) -> Result<Reply, ApiError> {
    let auth = ctx.scoped_auth(site, &[SCOPE_FILE_UPLOADS_CREATE])?;
    let id = ctx
        .sh
        .lock()
        .new_upload(site, auth.serial, &ctx.sh.data_dir);
    ctx.applied = true;
    Ok(Reply::xml(
        201,
        &format!(
            "<fileUpload{}/>",
            attrs(&[("uploadSessionId", &id), ("fileSize", "0")])
        ),
    ))
}

/// Append the `tableau_file` part of a multipart body to the upload session.
pub(super) async fn append(ctx: &mut Ctx, site: &str, id: &str) -> Result<Reply, ApiError> {
    let auth = ctx.scoped_auth(site, &[SCOPE_FILE_UPLOADS_CREATE])?;
    let sess = ctx
        .sh
        .lock()
        .upload_for(id, &auth, ctx.sh.cfg.bind_upload_sessions_to_auth)?;
    let boundary =
        multipart::boundary(ctx.content_type().as_deref()).ok_or_else(ApiError::malformed)?;
    let mut data = sess.data.lock().await;
    if data.consumed {
        return Err(ApiError::new(
            404,
            "404000",
            "Resource Not Found",
            format!("Upload session '{id}' could not be found."),
        ));
    }
    let sink = if ctx.sh.cfg.discard_data {
        Sink::Discard
    } else {
        Sink::Append(data.path.clone())
    };
    let body = ctx.body.take().ok_or_else(ApiError::malformed)?;
    let max = ctx.sh.cfg.max_chunk_bytes;
    let parsed = multipart::read(
        body,
        boundary,
        "tableau_file",
        sink,
        data.hasher.clone(),
        data.head.clone(),
        max,
    )
    .await
    .map_err(|e| {
        mp_error(e, || {
            ApiError::too_large(format!(
                "The file part is larger than the maximum chunk size of {max} bytes."
            ))
        })
    })?;
    let file = parsed
        .file
        .ok_or_else(|| ApiError::bad_request("The request must contain a 'tableau_file' part."))?;
    data.bytes += file.size;
    data.hasher = file.hasher;
    data.head = file.head;
    ctx.sh.lock().note_append(&sess.id, data.bytes);
    ctx.applied = true;
    let mb = ceil_mb(data.bytes).to_string();
    Ok(Reply::xml(
        200,
        &format!(
            "<fileUpload{}/>",
            attrs(&[("uploadSessionId", &sess.id), ("fileSize", &mb)])
        ),
    ))
}
