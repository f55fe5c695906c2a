// Interoperability: this Node client against a real eid server, as an
// integrator would use it. Run by tests/e2e/test_node_interop.py, which starts
// the server and creates the parties; exits non-zero on the first mismatch.
//
// Environment: EID_TARGET, EID_API_KEY (a party allowed password and
// qr_share), EID_LIMITED_API_KEY (a party allowed one call a minute about a
// citizen), EID_OUTBOX_FILE (the server's development SMS sink),
// EID_PORTRAIT_FILE (the app's capture of the citizen's face: 128 float32
// values, as `eid-server demo-portrait` writes them for a demo citizen).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import {
  AccountState,
  Attribute,
  AttributeMatch,
  EidClient,
  EidError,
  ErrorReason,
  Gender,
  NO_RETRY,
  status,
} from "../src";

const ID = "001190791514";
const NAME = "Nguyễn Thị Lan";
const BORN = "1990-05-17";
const PHONE = "0912345678";
const PHONE_E164 = "+84912345678";
const PASSWORD = "correct horse battery staple";

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/** The code in the newest SMS to `phone` in the outbox file (JSON lines). */
async function latestCode(outbox: string, phone: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    let lines: string[] = [];
    try {
      lines = readFileSync(outbox, "utf-8").trim().split("\n").reverse();
    } catch {
      // not written yet
    }
    for (const line of lines) {
      if (!line) continue;
      const message = JSON.parse(line) as { to: string; body: string };
      const code = /\b(\d{6})\b/.exec(message.body);
      if (message.to === phone && code) return code[1];
    }
    await sleep(50);
  }
  throw new Error("no SMS with a code in the outbox");
}

/** The EidError `call` fails with (fails the test if it succeeds). */
async function failure(call: Promise<unknown>): Promise<EidError> {
  try {
    await call;
  } catch (e) {
    assert.ok(e instanceof EidError, `expected an EidError, got ${String(e)}`);
    return e;
  }
  assert.fail("the call succeeded");
}

async function main(): Promise<void> {
  const eid = new EidClient(env("EID_TARGET"), { timeoutMs: 20_000 });
  const party = eid.withCaller({ apiKey: env("EID_API_KEY") });
  const portrait = readFileSync(env("EID_PORTRAIT_FILE"));
  try {
    const registered = await eid.register({
      personalId: ID,
      fullName: NAME,
      birthDate: BORN,
      gender: Gender.GENDER_FEMALE,
      phoneNumber: PHONE,
      portrait,
    });
    assert.equal(registered.account?.state, AccountState.ACCOUNT_STATE_PENDING);
    assert.equal(registered.personalId, ID); // the username to sign in with
    console.log("registered");

    const code = await latestCode(env("EID_OUTBOX_FILE"), PHONE_E164);
    const activation = { personalId: ID, activationCode: code, newPassword: PASSWORD };
    const activated = await eid.activate(activation);
    assert.equal(activated.account?.state, AccountState.ACCOUNT_STATE_ACTIVE);
    const reused = await failure(eid.activate(activation));
    assert.equal(reused.code, status.FAILED_PRECONDITION);
    assert.equal(reused.reason, "ACTIVATION_CODE_ALREADY_USED");
    assert.equal(reused.reasonEnum, ErrorReason.ACTIVATION_CODE_ALREADY_USED);
    console.log("activated");

    const verified = await party.verify({ password: { personalId: ID, password: PASSWORD } });
    assert.equal(verified.verified, true);
    assert.equal(verified.attributes?.fullName, NAME);
    const wrong = await party.verify({ password: { personalId: ID, password: "not it at all" } });
    assert.equal(wrong.verified, false);
    const stranger = eid.withCaller({ apiKey: "eidk_bogus" });
    const badKey = await failure(stranger.verify({ password: { personalId: ID, password: PASSWORD } }));
    assert.equal(badKey.code, status.UNAUTHENTICATED);
    assert.equal(badKey.reasonEnum, ErrorReason.API_KEY_INVALID);
    assert.equal(badKey.domain, "eid.v1");
    console.log("verified by password");

    const session = await eid.signIn({ personalId: ID, password: PASSWORD, deviceName: "node interop" });
    const citizen = eid.withCaller({ sessionToken: session.sessionToken });
    const share = await citizen.shareViaQR({
      attributes: [Attribute.ATTRIBUTE_FULL_NAME, Attribute.ATTRIBUTE_BIRTH_DATE],
    });
    assert.ok(share.token.length > 20);
    const noSession = await failure(eid.shareViaQR({ attributes: [Attribute.ATTRIBUTE_FULL_NAME] }));
    assert.equal(noSession.reasonEnum, ErrorReason.SESSION_MISSING);
    console.log("shared");

    const redeemed = await party.verify({ qrShare: { token: share.token } });
    assert.equal(redeemed.verified, true);
    assert.equal(redeemed.attributes?.birthDate, BORN);
    assert.equal(redeemed.attributes?.personalId, ""); // not shared
    const again = await failure(party.verify({ qrShare: { token: share.token } }));
    assert.equal(again.reasonEnum, ErrorReason.SHARE_ALREADY_REDEEMED);
    assert.match(again.toString(), /SHARE_ALREADY_REDEEMED/);
    console.log("redeemed");

    // Invalid input: BadRequest names the field.
    const invalid = await failure(
      eid.register({
        personalId: "12345",
        fullName: NAME,
        birthDate: BORN,
        gender: Gender.GENDER_FEMALE,
        phoneNumber: PHONE,
        portrait,
      }),
    );
    assert.equal(invalid.code, status.INVALID_ARGUMENT);
    assert.ok(invalid.fieldViolations.some((v) => v.field === "personal_id" && v.reason !== ""), invalid.toString());

    // Rate limits: RetryInfo says how long to wait (a minute's refill here,
    // longer than the retry policy waits inside a call, so it is thrown).
    const limited = eid.withCaller({ apiKey: env("EID_LIMITED_API_KEY") });
    const claim = { demographic: { personalId: ID, fullName: NAME } };
    const claimed = await limited.verify(claim);
    assert.equal(claimed.demographic?.fullName, AttributeMatch.ATTRIBUTE_MATCH_MATCH);
    const paced = await failure(limited.verify(claim, { retry: NO_RETRY }));
    assert.equal(paced.code, status.RESOURCE_EXHAUSTED);
    assert.equal(paced.reasonEnum, ErrorReason.PARTY_CITIZEN_RATE_LIMITED);
    assert.ok(paced.retryDelayMs !== undefined && paced.retryDelayMs > 0 && paced.retryDelayMs <= 60_000);
    console.log("errors decoded");
  } finally {
    eid.close();
  }
}

main().then(
  () => console.log("node interop: ok"),
  (e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  },
);
