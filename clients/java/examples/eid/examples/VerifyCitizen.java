package eid.examples;

import eid.client.EidClient;
import eid.client.EidException;
import eid.v1.IdentityServiceOuterClass.PasswordCredential;
import eid.v1.IdentityServiceOuterClass.QrShareCredential;
import eid.v1.IdentityServiceOuterClass.VerifyRequest;
import eid.v1.IdentityServiceOuterClass.VerifyResponse;
import io.grpc.ChannelCredentials;
import io.grpc.TlsChannelCredentials;
import java.io.File;
import java.io.IOException;

/**
 * A relying party's first call: verify a citizen by ID number and password, or redeem a scanned
 * QR share.
 *
 * <pre>
 * EID_API_KEY=eidk_... java -cp ... eid.examples.VerifyCitizen 001190791514 'the password'
 * EID_API_KEY=eidk_... java -cp ... eid.examples.VerifyCitizen --share eid2....
 * </pre>
 *
 * EID_TARGET is the server (default 127.0.0.1:50051, plaintext). With EID_CA_CERT (a PEM file of
 * the CA that signed the server's certificate) the call goes over TLS, and with EID_CLIENT_CERT and
 * EID_CLIENT_KEY (PEM; the key PKCS#8, as {@code openssl pkcs8 -topk8 -nocrypt} writes it) it
 * presents a client certificate: the variables the {@code eid} CLI reads.
 */
public final class VerifyCitizen {
  private VerifyCitizen() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 2) {
      System.err.println("usage: VerifyCitizen ID_NUMBER PASSWORD | VerifyCitizen --share TOKEN");
      System.exit(2);
    }
    String target = System.getenv().getOrDefault("EID_TARGET", "127.0.0.1:50051");
    EidClient.Builder builder = EidClient.builder(target).apiKey(System.getenv("EID_API_KEY"));
    if (System.getenv("EID_CA_CERT") == null) {
      builder.usePlaintext();
    } else {
      builder.credentials(tls());
    }
    VerifyRequest.Builder request = VerifyRequest.newBuilder();
    if (args[0].equals("--share")) {
      request.setQrShare(QrShareCredential.newBuilder().setToken(args[1]));
    } else {
      request.setPassword(
          PasswordCredential.newBuilder().setPersonalId(args[0]).setPassword(args[1]));
    }
    try (EidClient bank = builder.build()) {
      VerifyResponse answer = bank.verify(request.build());
      System.out.println(
          answer.getVerified()
              ? "verified: " + answer.getAttributes().getFullName() + " (" + answer.getLevel() + ")"
              : "not verified");
    } catch (EidException e) {
      switch (e.errorReason()) {
        case API_KEY_INVALID:
          System.err.println("the API key is not valid: ask the operator for a new one");
          break;
        case SHARE_ALREADY_REDEEMED:
        case SHARE_EXPIRED:
          System.err.println("ask the citizen for a fresh QR code");
          break;
        default:
          // Reasons this build does not know yet: the status code alone decides.
          System.err.println("failed: " + e.code() + " " + e.reason() + " " + e.fieldViolations());
      }
      e.retryDelay().ifPresent(d -> System.err.println("retry in " + d.toMillis() + " ms"));
      System.exit(1);
    }
  }

  private static ChannelCredentials tls() throws IOException {
    TlsChannelCredentials.Builder tls =
        TlsChannelCredentials.newBuilder().trustManager(new File(System.getenv("EID_CA_CERT")));
    String cert = System.getenv("EID_CLIENT_CERT");
    if (cert != null) {
      tls.keyManager(new File(cert), new File(System.getenv("EID_CLIENT_KEY")));
    }
    return tls.build();
  }
}
