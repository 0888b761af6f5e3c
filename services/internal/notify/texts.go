package notify

import (
	"cmp"
	"fmt"
	"strings"

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

// MaxNoteRunes bounds how much of an officer's note a message quotes: a text message is short.
const MaxNoteRunes = 70

// texts is the message of an event, in Chinese and in English, for a recipient in a role;
// ok is false for an event that tells that recipient nothing.
func texts(ev *whistlev1.Event, kind string, role Role, unit string) (zh, en string, ok bool) {
	id := ev.GetIssueId()
	if role == RoleEscalation {
		return escalationTexts(ev, unit)
	}
	if role == RoleOfficer {
		return fmt.Sprintf("新派单：案件 %s 已派至 %s，请您签收处理。", id, unit),
			fmt.Sprintf("New assignment: case %s is with %s, for you to report in and act on.", id, unit), true
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
