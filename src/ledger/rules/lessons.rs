//! Rules of the lessons consumed (消课) and their disputes: `lesson_consumed` (co-signed
//! by the student and the donor, final at once), `lesson_proposed` (the donor; pending),
//! `lesson_confirmed` (the student), `lesson_disputed` (the student or a consumer
//! association, within the window), `lesson_deemed_confirmed` (the operator, once the
//! window has elapsed undisputed) and `dispute_resolved` (the operator).
//!
//! "A lesson id is consumed once; an allocation can never consume more than k lessons
//! (count pending ones)": a proposal moves one lesson from `remaining` to `pending`, so
//! `consumed + pending ≤ k` always.

use super::Cx;
use crate::ledger::error::RuleError;
use crate::ledger::objects::{
    Allocation, AllocationStatus, Dispute, DisputeStatus, Lesson, LessonStatus, OpenLesson,
};
use crate::ledger::payload::{
    DisputeOutcome, DisputeResolved, LessonDisputed, LessonOnAllocation, LessonRef, Role,
};
use crate::ledger::state::StateView;
use crate::ledger::units::{Id, Lessons};

/// Who signed a delivered lesson, which decides whether it is settled at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Delivery {
    /// `lesson_consumed`: the student and the institution, settled at once.
    Cosigned,
    /// `lesson_proposed`: the institution alone; the student confirms or disputes.
    Proposed,
}

/// `lesson_consumed` or `lesson_proposed`.
pub(super) fn lesson_delivered<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &LessonOnAllocation,
    delivery: Delivery,
) -> Result<(), RuleError> {
    let cosigned = delivery == Delivery::Cosigned;
    let lesson_id = Id::new("lesson", &p.lesson)?;
    let alloc_id = Id::new("allocation", &p.allocation)?;
    let mut alloc: Allocation = cx
        .tx
        .need(alloc_id.as_str(), || RuleError::AllocationUnknown {
            allocation: alloc_id.to_string(),
        })?;
    if cosigned {
        cx.signers.require_party(&alloc.student, "student")?;
    }
    cx.signers
        .require_party(&alloc.institution, "institution")?;
    if cx.tx.find::<Lesson>(lesson_id.as_str())?.is_some() {
        return Err(RuleError::LessonExists {
            lesson: lesson_id.to_string(),
        });
    }
    if alloc.status != AllocationStatus::Active {
        return Err(RuleError::AllocationNotActive {
            allocation: alloc_id.to_string(),
            status: alloc.status.as_str(),
        });
    }
    let t = cx.ctx.time_micros;
    if t >= alloc.expires_at_micros {
        return Err(RuleError::AllocationPastExpiry {
            allocation: alloc_id.to_string(),
            time: t,
            expires_at: alloc.expires_at_micros,
        });
    }
    // "A banned institution ... delivers nothing after its ban"
    cx.active_institution(&alloc.institution)?;
    if alloc.lessons.remaining().0 == 0 {
        return Err(RuleError::AllocationExhausted {
            allocation: alloc_id.to_string(),
        });
    }
    let (status, window_end) = if cosigned {
        alloc.lessons.consume_remaining()?;
        cx.finalize_lesson(&alloc)?;
        (LessonStatus::Final, None)
    } else {
        let window_end_micros = propose(cx, &mut alloc, &lesson_id)?;
        (LessonStatus::Pending, Some(window_end_micros))
    };
    cx.tx.put(alloc);
    cx.tx.put(Lesson {
        lesson: lesson_id,
        allocation: alloc_id,
        status,
        window_end_micros: window_end,
        dispute: None,
        entries: Vec::new(),
    });
    Ok(())
}

/// A proposal: one lesson of `alloc` moves to pending and is listed on it (so the
/// family's proven view of the allocation shows it) with its window's end, returned.
fn propose<V: StateView + ?Sized>(
    cx: &Cx<'_, '_, V>,
    alloc: &mut Allocation,
    lesson: &Id,
) -> Result<u64, RuleError> {
    alloc.lessons.propose()?;
    let config = cx.config()?;
    let window = config.days_micros(config.confirmation_window_days, "confirmation window")?;
    let window_end_micros = cx
        .ctx
        .time_micros
        .checked_add(window)
        .ok_or(RuleError::Overflow { what: "window end" })?;
    alloc.open_lessons.push(OpenLesson {
        lesson: lesson.clone(),
        window_end_micros,
    });
    Ok(window_end_micros)
}

/// A lesson and its allocation.
fn lesson_and_allocation<V: StateView + ?Sized>(
    cx: &Cx<'_, '_, V>,
    lesson: &Id,
) -> Result<(Lesson, Allocation), RuleError> {
    let l: Lesson = cx.tx.need(lesson.as_str(), || RuleError::LessonUnknown {
        lesson: lesson.to_string(),
    })?;
    let a: Allocation = cx
        .tx
        .need(l.allocation.as_str(), || RuleError::StateCorrupt {
            detail: format!("lesson {lesson} names unknown allocation {}", l.allocation),
        })?;
    Ok((l, a))
}

fn require_pending(l: &Lesson) -> Result<(), RuleError> {
    if l.status == LessonStatus::Pending {
        Ok(())
    } else {
        Err(RuleError::LessonNotPending {
            lesson: l.lesson.to_string(),
            status: l.status.as_str(),
        })
    }
}

/// A pending (or disputed) lesson becomes final.
fn finalize_pending<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    mut lesson: Lesson,
    mut alloc: Allocation,
) -> Result<(), RuleError> {
    alloc.lessons.confirm_pending()?;
    cx.finalize_lesson(&alloc)?;
    settle_open_lesson(&mut alloc, &lesson.lesson)?;
    lesson.status = LessonStatus::Final;
    cx.tx.put(lesson);
    cx.put_allocation(alloc)
}

/// Takes a lesson that has just become final or void off its allocation's open list.
///
/// # Errors
/// `state_corrupt` if the list does not hold it (the list and `pending` always agree).
fn settle_open_lesson(alloc: &mut Allocation, lesson: &Id) -> Result<(), RuleError> {
    let at = alloc
        .open_lessons
        .iter()
        .position(|open| open.lesson == *lesson)
        .ok_or_else(|| RuleError::StateCorrupt {
            detail: format!(
                "allocation {} does not list its open lesson {lesson}",
                alloc.allocation
            ),
        })?;
    alloc.open_lessons.remove(at);
    Ok(())
}

pub(super) fn lesson_confirmed<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &LessonRef,
) -> Result<(), RuleError> {
    let lesson_id = Id::new("lesson", &p.lesson)?;
    let (lesson, alloc) = lesson_and_allocation(cx, &lesson_id)?;
    cx.signers.require_party(&alloc.student, "student")?;
    require_pending(&lesson)?;
    finalize_pending(cx, lesson, alloc)
}

pub(super) fn lesson_deemed_confirmed<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &LessonRef,
) -> Result<(), RuleError> {
    let lesson_id = Id::new("lesson", &p.lesson)?;
    cx.signers.require_role(Role::Operator)?;
    let (lesson, alloc) = lesson_and_allocation(cx, &lesson_id)?;
    require_pending(&lesson)?;
    // "once the entry's ledger time ≥ proposal time + window and it was not disputed",
    // and an association has attested a time past the window's end: the operator's
    // clock alone never deems a lesson confirmed (`rules/time.rs`).
    let window_end = window_end(&lesson)?;
    if cx.ctx.time_micros < window_end {
        return Err(RuleError::WindowNotElapsed {
            time: cx.ctx.time_micros,
            window_end,
        });
    }
    super::time::require_attested(cx, "the confirmation window", window_end)?;
    finalize_pending(cx, lesson, alloc)
}

fn window_end(lesson: &Lesson) -> Result<u64, RuleError> {
    lesson
        .window_end_micros
        .ok_or_else(|| RuleError::StateCorrupt {
            detail: format!("pending lesson {} has no window", lesson.lesson),
        })
}

pub(super) fn lesson_disputed<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &LessonDisputed,
) -> Result<(), RuleError> {
    let dispute_id = Id::new("dispute", &p.dispute)?;
    let lesson_id = Id::new("lesson", &p.lesson)?;
    super::evidence(p.evidence_digest.as_deref())?;
    let text = p.reason.as_str().to_owned();
    let (mut lesson, alloc) = lesson_and_allocation(cx, &lesson_id)?;
    // "by the student or a consumer association"
    let by = cx.signers.require_party_or_role(
        &alloc.student,
        Role::Association,
        "student or association",
    )?;
    if cx.tx.find::<Dispute>(dispute_id.as_str())?.is_some() {
        return Err(RuleError::DisputeExists {
            dispute: dispute_id.to_string(),
        });
    }
    require_pending(&lesson)?;
    // A dispute must come within the window; after it, the proposal counts as confirmed.
    // The window is over only on both clocks, the ledger's and the associations'.
    let window_end = window_end(&lesson)?;
    if super::time::passed(cx, window_end)? {
        return Err(RuleError::WindowElapsed {
            time: cx.ctx.time_micros,
            window_end,
        });
    }
    lesson.status = LessonStatus::Disputed;
    lesson.dispute = Some(dispute_id.clone());
    cx.tx.put(lesson);
    cx.tx.put(Dispute {
        dispute: dispute_id,
        lesson: lesson_id,
        raised_by: by,
        reason: text,
        status: DisputeStatus::Open,
        resolution: None,
        entries: Vec::new(),
    });
    Ok(())
}

pub(super) fn dispute_resolved<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &DisputeResolved,
) -> Result<(), RuleError> {
    let dispute_id = Id::new("dispute", &p.dispute)?;
    super::evidence(p.evidence_digest.as_deref())?;
    let text = p.reason.as_str().to_owned();
    cx.signers.require_role(Role::Operator)?;
    let mut dispute: Dispute = cx
        .tx
        .need(dispute_id.as_str(), || RuleError::DisputeUnknown {
            dispute: dispute_id.to_string(),
        })?;
    if dispute.status != DisputeStatus::Open {
        return Err(RuleError::DisputeNotOpen {
            dispute: dispute_id.to_string(),
        });
    }
    let (mut lesson, mut alloc) = lesson_and_allocation(cx, &dispute.lesson)?;
    if lesson.status != LessonStatus::Disputed {
        return Err(RuleError::StateCorrupt {
            detail: format!("open dispute {dispute_id} on a lesson not disputed"),
        });
    }
    dispute.status = DisputeStatus::Resolved(p.outcome);
    dispute.resolution = Some(text);
    cx.tx.put(dispute);
    match p.outcome {
        // "rejected → it stands (final)"
        DisputeOutcome::Rejected => finalize_pending(cx, lesson, alloc),
        // "upheld → the lesson is void and its value returns (to the allocation, or to
        // claim/pledge if the allocation has ended)"
        DisputeOutcome::Upheld => {
            if alloc.status == AllocationStatus::Active {
                alloc.lessons.void_pending()?;
            } else {
                alloc.lessons.release_pending()?;
                cx.release(&alloc, Lessons(1))?;
            }
            settle_open_lesson(&mut alloc, &lesson.lesson)?;
            lesson.status = LessonStatus::Void;
            cx.tx.put(lesson);
            cx.put_allocation(alloc)
        }
    }
}
