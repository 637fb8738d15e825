// Whether to move focus into a text field by itself. With a mouse and keyboard it saves
// a click; on touch screens it would pop up the on-screen keyboard uninvited.
export function canAutoFocusText(): boolean {
  return typeof window !== "undefined" && window.matchMedia?.("(hover: hover) and (pointer: fine)").matches === true;
}
