import { createApiClient } from "./api";
import type { DemoStatusData, DemoTokenData } from "./types";

// Demo mode: a server bound to localhost can hand out throwaway tokens so a newcomer can
// try both sides. Anything but an explicit "enabled" (404, error) means it is off.
export async function isDemoEnabled(): Promise<boolean> {
  try {
    const data = await createApiClient("", null).get<DemoStatusData>("/api/demo");
    return data.enabled === true;
  } catch {
    return false;
  }
}

export function fetchDemoToken(role: "user" | "agent"): Promise<DemoTokenData> {
  return createApiClient("", null).post<DemoTokenData>("/api/demo/token", { role });
}
