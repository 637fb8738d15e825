import { createRoot } from "react-dom/client";
import { LandingApp } from "../landing/LandingApp";
import "../shared/page.css";
import "../landing/landing.css";

createRoot(document.getElementById("root")!).render(<LandingApp />);
