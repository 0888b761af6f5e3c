package notify

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// RaiserKinds are the kinds of event (eventlog.Kind) that change an issue in a way its raiser
// sees, and so are told of: where it went, who took it on, what became of it. The kinds inside a
// department (a hand-over, a note, an extension asked) and those of another issue (joined, left)
// are not.
var RaiserKinds = []string{
	"routed", "needs-dispatch", "acknowledged", "resolved", "returned", "breached",
	"linked", "unlinked", "recategorised", "verified", "rated", "closed",
}

// OfficerKinds are the kinds of event a supervisor writes on a unit's part that its officer is
// told of: an urge (督办), which the unit's head the urge names is told of too, and the decision on
// the extension the unit asked for.
var OfficerKinds = []string{"urged", "extension-decided"}

// supervisedUnit is the unit whose part an urge or an extension decision names.
func supervisedUnit(ev *whistlev1.Event) string {
	switch p := ev.GetPayload().(type) {
	case *whistlev1.Event_Urged:
		return cmp.Or(p.Urged.GetUnitId(), p.Urged.GetDepartmentId())
	case *whistlev1.Event_ExtensionDecided:
		return cmp.Or(p.ExtensionDecided.GetUnitId(), p.ExtensionDecided.GetDepartmentId())
	}
	return ""
}

// officerTexts is the message of an event stored at at for the officer named on a unit's part. An
// approval stored once the deadline it meant to move had passed moved nothing (see
// assignment.Decision), and says so.
func officerTexts(ev *whistlev1.Event, at time.Time, kind, unit string) (zh, en string, ok bool) {
	id := ev.GetIssueId()
	switch kind {
	case "pushed":
		return fmt.Sprintf("新派单：案件 %s 已派至 %s，请您签收处理。", id, unit),
			fmt.Sprintf("New assignment: case %s is with %s, for you to report in and act on.", id, unit), true
	case "urged":
		note := clip(ev.GetUrged().GetNote())
		return fmt.Sprintf("督办：案件 %s（%s）被督办，请尽快办理：%s", id, unit, note),
			fmt.Sprintf("Urged: case %s (%s) was urged by a supervisor: %s", id, unit, note), true
	case "extension-decided":
		d := ev.GetExtensionDecided()
		zhWhat, enWhat := "签收", "report-in"
		if d.GetKind() == whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE {
			zhWhat, enWhat = "办结", "resolve"
		}
		if d.GetApproved() && !at.Before(d.GetDeadline().AsTime()) {
			return fmt.Sprintf("延期批准过晚：案件 %s（%s）的%s时限已过，时限不变。", id, unit, zhWhat),
				fmt.Sprintf("Extension approved too late: case %s (%s), the %s deadline had passed and stands.", id, unit, enWhat), true
		}
		if d.GetApproved() {
			granted := d.GetGranted().AsTime().UTC().Format(time.RFC3339)
			return fmt.Sprintf("延期已批准：案件 %s（%s）的%s时限延至 %s。", id, unit, zhWhat, granted),
				fmt.Sprintf("Extension approved: case %s (%s), %s deadline moved to %s.", id, unit, enWhat, granted), true
		}
		reason := clip(d.GetReason())
		return fmt.Sprintf("延期未批准：案件 %s（%s）的%s时限不变：%s", id, unit, zhWhat, reason),
			fmt.Sprintf("Extension denied: case %s (%s), the %s deadline stands: %s", id, unit, enWhat, reason), true
	}
	return "", "", false
}

// MaxNoteRunes bounds how much of an officer's note a message quotes: a text message is short.
const MaxNoteRunes = 70

// texts is the message of an event the stream stored at at, in Chinese and in English, for a
// recipient in a role; ok is false for an event that tells that recipient nothing.
func texts(ev *whistlev1.Event, at time.Time, kind string, role Role, unit string) (zh, en string, ok bool) {
	id := ev.GetIssueId()
	if role == RoleEscalation {
		return escalationTexts(ev, unit)
	}
	if role == RoleOfficer || role == RoleHead {
		return officerTexts(ev, at, kind, unit)
	}
	switch kind {
	case "routed":
		var units []string
		for _, d := range ev.GetRouted().GetDispatches() {
			units = append(units, cmp.Or(d.GetUnitId(), d.GetDepartmentId()))
		}
		list := strings.Join(units, ", ")
		return fmt.Sprintf("您反映的问题（案件 %s）已派至 %s 处理。", id, strings.Join(units, "、")),
			fmt.Sprintf("Your issue %s was sent to %s.", id, list), true
	case "needs-dispatch":
		return fmt.Sprintf("您反映的问题（案件 %s）正在等待人工派单。", id),
			fmt.Sprintf("Your issue %s is waiting for a dispatcher.", id), true
	case "acknowledged":
		u := cmp.Or(ev.GetAcknowledged().GetUnitId(), ev.GetAcknowledged().GetDepartmentId())
		return fmt.Sprintf("%s 已签收您反映的问题（案件 %s）。", u, id),
			fmt.Sprintf("%s has reported in on your issue %s.", u, id), true
	case "resolved":
		r := ev.GetResolved()
		u, note := cmp.Or(r.GetUnitId(), r.GetDepartmentId()), clip(r.GetNote())
		return fmt.Sprintf("%s 已办结您反映的问题（案件 %s）：%s", u, id, note),
			fmt.Sprintf("%s resolved its part of your issue %s: %s", u, id, note), true
	case "returned":
		u := cmp.Or(ev.GetReturned().GetUnitId(), ev.GetReturned().GetDepartmentId())
		return fmt.Sprintf("%s 退回了您反映的问题（案件 %s），将重新派单。", u, id),
			fmt.Sprintf("%s returned your issue %s; it will be routed again.", u, id), true
	case "breached":
		b := ev.GetBreached()
		u := cmp.Or(b.GetUnitId(), b.GetDepartmentId())
		zhWhat, enWhat := "签收", "report in"
		if b.GetKind() == whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE {
			zhWhat, enWhat = "办结", "resolve"
		}
		return fmt.Sprintf("您反映的问题（案件 %s）：%s 未在时限内%s，已记录超时。", id, u, zhWhat),
			fmt.Sprintf("Your issue %s: %s did not %s in time; the breach is recorded.", id, u, enWhat), true
	case "linked":
		orig := ev.GetLinked().GetOriginalId()
		return fmt.Sprintf("您反映的问题（案件 %s）已并入案件 %s 一并处理。", id, orig),
			fmt.Sprintf("Your issue %s joined case %s, which deals with the same matter.", id, orig), true
	case "unlinked":
		return fmt.Sprintf("您反映的问题（案件 %s）将单独处理。", id),
			fmt.Sprintf("Your issue %s is now dealt with as a case of its own.", id), true
	case "recategorised":
		c := ev.GetRecategorised().GetToCategoryId()
		return fmt.Sprintf("您反映的问题（案件 %s）类别已改为 %s。", id, c),
			fmt.Sprintf("Your issue %s was recategorised as %s.", id, c), true
	case "verified":
		if v := ev.GetVerified(); !v.GetPassed() {
			u := cmp.Or(v.GetReopened().GetUnitId(), v.GetReopened().GetDepartmentId())
			return fmt.Sprintf("您反映的问题（案件 %s）现场核查未通过，已退回 %s 重新办理。", id, u),
				fmt.Sprintf("Your issue %s failed its check on site and goes back to %s.", id, u), true
		}
		return fmt.Sprintf("您反映的问题（案件 %s）已现场核查通过。", id),
			fmt.Sprintf("Your issue %s passed its check on site.", id), true
	case "rated":
		return fmt.Sprintf("您反映的问题（案件 %s）已收到评价。", id),
			fmt.Sprintf("Your issue %s was rated.", id), true
	case "closed":
		return fmt.Sprintf("您反映的问题（案件 %s）已结案。", id),
			fmt.Sprintf("Your issue %s is closed.", id), true
	}
	return "", "", false
}

// clip shortens a note to MaxNoteRunes runes.
func clip(s string) string {
	r := []rune(strings.TrimSpace(s))
	if len(r) <= MaxNoteRunes {
		return string(r)
	}
	return string(r[:MaxNoteRunes]) + "…"
}

// escalationTexts tells of a reminder or a chain step, for the person it names.
func escalationTexts(ev *whistlev1.Event, unit string) (zh, en string, ok bool) {
	id := ev.GetIssueId()
	zhWhat, enWhat := "签收", "report in"
	if ev.GetReminded().GetKind() == whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE || ev.GetEscalated().GetKind() == whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE {
		zhWhat, enWhat = "办结", "resolve"
	}
	if r := ev.GetReminded(); r != nil {
		by := r.GetDeadline().AsTime().Format("2006-01-02 15:04 MST")
		return fmt.Sprintf("提醒：案件 %s 的%s时限已过 %d%%，请于 %s 前%s。", id, zhWhat, r.GetPercent(), by, zhWhat),
			fmt.Sprintf("Reminder: %d%% of the time to %s case %s has passed; %s it by %s.", r.GetPercent(), enWhat, id, enWhat, by), true
	}
	e := ev.GetEscalated()
	return fmt.Sprintf("督办升级（第 %d 级）：案件 %s 的 %s 超过%s时限，请督促处理。", e.GetLevel(), id, unit, zhWhat),
		fmt.Sprintf("Escalation, level %d: %s missed its deadline to %s case %s; please see that it is dealt with.", e.GetLevel(), unit, enWhat, id), true
}
