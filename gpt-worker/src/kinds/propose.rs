//! How a writing job ends: its changes become a proposal of story-service's
//! ProposalService, which the author reviews (`REVIEW`, the default) or the job
//! accepts at once (`AUTO`). Either way the job writes nothing by itself: every
//! write is an accepted change, recorded as the job's.
//!
//! A job has one proposal: a run again (after a crash or a retry) gets the first one
//! back from CreateProposal, accepted already when an earlier run accepted it.

use fabula_contracts::pb::{
    jobs::Apply,
    story::{
        AcceptProposalRequest, Change, ChangeState, CreateProposalRequest, GetProposalRequest, Proposal, ProposalState,
    },
};
use tonic::Status;
use tonic_types::StatusExt;

use super::{JobContext, KindError};

/// Records `changes` to world `world_id` as a proposal titled `title` and, with
/// AUTO, accepts it; `None` when there is nothing to propose.
pub async fn conclude(
    ctx: &JobContext<'_>,
    world_id: &str,
    title: String,
    changes: Vec<Change>,
) -> Result<Option<Proposal>, KindError> {
    if changes.is_empty() {
        return Ok(None);
    }
    let proposal = Proposal { title, changes, ..Proposal::default() };
    let request = CreateProposalRequest { world_id: world_id.into(), proposal: Some(proposal) };
    let proposal = ctx.story.proposals().create_proposal(ctx.as_owner(request)).await?.into_inner();
    if ctx.apply != Apply::Auto || proposal.state() != ProposalState::ProposalOpen {
        return Ok(Some(proposal));
    }
    accept(ctx, proposal).await.map(Some)
}

/// Accepts every change of `proposal`; when some went stale (a person's edit won),
/// accepts the others. When none is left, the proposal stays open for the author.
async fn accept(ctx: &JobContext<'_>, proposal: Proposal) -> Result<Proposal, KindError> {
    let all = AcceptProposalRequest { id: proposal.id.clone(), ..AcceptProposalRequest::default() };
    let stale = match ctx.story.proposals().accept_proposal(ctx.as_owner(all.clone())).await {
        Ok(accepted) => return Ok(accepted.into_inner()),
        Err(status) => stale_ids(&status).ok_or(status)?,
    };
    let fresh: Vec<String> = proposal.changes.iter().map(|c| c.id.clone()).filter(|id| !stale.contains(id)).collect();
    if fresh.is_empty() {
        ctx.recorder.note("what the job found was changed meanwhile: its proposal waits for review");
        let request = GetProposalRequest { id: proposal.id };
        return Ok(ctx.story.proposals().get_proposal(ctx.as_owner(request)).await?.into_inner());
    }
    let request = AcceptProposalRequest { change_ids: fresh, ..all };
    Ok(ctx.story.proposals().accept_proposal(ctx.as_owner(request)).await?.into_inner())
}

/// The changes a PROPOSAL_STALE refusal names; `None` for any other status.
fn stale_ids(status: &Status) -> Option<Vec<String>> {
    let info = status.get_details_error_info().filter(|info| info.reason == "PROPOSAL_STALE")?;
    let ids = info.metadata.get("stale_change_ids").cloned().unwrap_or_default();
    Some(ids.split(',').filter(|id| !id.is_empty()).map(str::to_owned).collect())
}

/// The changes of `proposal` that were applied.
pub fn applied(proposal: Option<&Proposal>) -> impl Iterator<Item = &Change> {
    proposal.into_iter().flat_map(|p| &p.changes).filter(|c| c.state() == ChangeState::ChangeApplied)
}
