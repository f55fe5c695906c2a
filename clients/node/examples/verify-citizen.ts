// A relying party checks a citizen's ID number and password with eid.
//
//   cd clients/node && npm ci && npm run build
//   EID_API_KEY=eidk_... node dist/examples/verify-citizen.js 001190791514 'correct horse battery staple'
//
// EID_TARGET (default 127.0.0.1:50051) names the server; with EID_TLS_CA set
// (a PEM file, or "system" for the system roots) the channel uses TLS.
import { readFileSync } from "node:fs";
import { accountLevelToJSON, credentials, EidClient, EidError, Scope } from "../src";

function channelCredentials() {
  const ca = process.env.EID_TLS_CA;
  if (!ca) return credentials.createInsecure(); // local development only
  return credentials.createSsl(ca === "system" ? null : readFileSync(ca));
}

async function main(personalId: string, password: string): Promise<number> {
  const eid = new EidClient(process.env.EID_TARGET ?? "127.0.0.1:50051", {
    apiKey: process.env.EID_API_KEY,
    credentials: channelCredentials(),
    timeoutMs: 5_000,
  });
  try {
    const answer = await eid.verify({
      password: { personalId, password },
      requestedScopes: [Scope.SCOPE_BASIC],
    });
    if (!answer.verified) {
      console.log("not verified: wrong ID number or password");
      return 1;
    }
    console.log(`verified: ${answer.attributes?.fullName} (${accountLevelToJSON(answer.level)})`);
    return 0;
  } catch (e) {
    if (!(e instanceof EidError)) throw e;
    // e.g. "UNAUTHENTICATED API_KEY_INVALID: ..." or "UNAVAILABLE: No connection established"
    console.error(`eid refused: ${e.toString()}`);
    for (const v of e.fieldViolations) console.error(`  ${v.field}: ${v.reason}`);
    if (e.retryDelayMs !== undefined) console.error(`  retry in ${Math.ceil(e.retryDelayMs / 1000)} s`);
    return 2;
  } finally {
    eid.close();
  }
}

const [personalId, password] = process.argv.slice(2);
if (!personalId || !password) {
  console.error("usage: verify-citizen.js ID_NUMBER PASSWORD (with EID_API_KEY set)");
  process.exit(64);
}
main(personalId, password).then((code) => {
  process.exitCode = code;
});
