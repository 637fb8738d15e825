import type { Priority, TicketStatus } from "./types";

// The server's default categories (docs/protocol.md §3.5). An operator can change the
// list on the server; there is no endpoint to read it, so the UI offers these and
// shows the server's answer if it refuses one.
export const CATEGORIES: readonly string[] = [
  "general_inquiry",
  "account_support",
  "technical_support",
  "technical_issue",
  "account_problem",
  "payment_inquiry",
  "project_question",
  "assessment_issue",
  "application_help",
  "bug_report",
  "feature_request",
  "other",
];

export const DEFAULT_CATEGORY = "general_inquiry";

export const PRIORITIES: readonly Priority[] = ["low", "medium", "high", "urgent"];

export const DEFAULT_PRIORITY: Priority = "medium";

// Counted in Unicode code points, as the server counts them (protocol.md §3.6).
export const MAX_MESSAGE_LENGTH = 5000;

export const ACTIVE_STATUSES: readonly TicketStatus[] = ["open", "in_progress", "waiting_for_user"];

export function isActiveStatus(status: TicketStatus): boolean {
  return ACTIVE_STATUSES.includes(status);
}

const CATEGORY_LABELS: Record<string, string> = {
  general_inquiry: "General question",
  account_support: "Account support",
  technical_support: "Technical support",
  technical_issue: "Technical issue",
  account_problem: "Account problem",
  payment_inquiry: "Payments and billing",
  project_question: "Project question",
  assessment_issue: "Assessment issue",
  application_help: "Application help",
  bug_report: "Bug report",
  feature_request: "Feature request",
  other: "Other",
};

// Unknown categories (an operator's own) still read well: "vip_onboarding" → "Vip onboarding".
export function categoryLabel(category: string): string {
  const known = CATEGORY_LABELS[category];
  if (known) return known;
  const words = category.replace(/_/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

const PRIORITY_LABELS: Record<Priority, string> = {
  low: "Low",
  medium: "Medium",
  high: "High",
  urgent: "Urgent",
};

export function priorityLabel(priority: Priority): string {
  return PRIORITY_LABELS[priority] ?? priority;
}

const STATUS_LABELS: Record<TicketStatus, string> = {
  open: "Open",
  in_progress: "In progress",
  waiting_for_user: "Waiting for user",
  resolved: "Resolved",
  closed: "Closed",
};

export function statusLabel(status: TicketStatus): string {
  return STATUS_LABELS[status] ?? status;
}

export function codePointLength(text: string): number {
  return Array.from(text).length;
}
