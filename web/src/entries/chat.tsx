import { createRoot } from "react-dom/client";
import { CustomerChat } from "../customer/customerChat";
import { CustomerApp } from "../customer/CustomerApp";
import { isExpired, readClaims, takeTokenFromPage } from "../shared/token";
import { TokenProblem } from "../shared/ui/TokenProblem";
import "../shared/page.css";
import "../shared/ui/chat-ui.css";
import "../customer/customer.css";

// /chat: the customer chat as a full page. The token arrives as /chat#token=JWT.
const token = takeTokenFromPage("customer");
const root = createRoot(document.getElementById("root")!);

if (!token) {
  root.render(<TokenProblem reason="missing" page="customer" />);
} else if (isExpired(readClaims(token))) {
  root.render(<TokenProblem reason="expired" page="customer" />);
} else {
  const chat = new CustomerChat({ serverUrl: "", tokens: { current: () => token } });
  chat.start();
  root.render(
    <div className="sc-page-center">
      <CustomerApp chat={chat} title="Support" variant="page" />
    </div>,
  );
}
