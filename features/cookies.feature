Feature: Cookie wire format — signed ids bound to their cookie name
  A signed cookie's value is "<id>.<sig>", where <sig> is the unpadded base64url HMAC-SHA256
  of "<cookie name>=<id>" under the newest key. One cookie per value, no ".sig" companion.

  Background:
    Given a bridge with session cookie "app.sid" and a max age of 1 day, on a manual clock

  @C1
  Scenario: Both cookies are "<id>.<signature>" and come without a companion cookie
    When Alice sends a request that sets n to 1
    Then the response sets exactly the cookies "app.sid.cid", "app.sid"
    And Alice's session cookie is her session id, a dot and the base64url HMAC-SHA256 of "app.sid=<id>" under key A
    And Alice's client cookie is her client id, a dot and the base64url HMAC-SHA256 of "app.sid.cid=<id>" under key A

  @C1
  Scenario: A value moved to the other cookie name does not verify
    Given Alice has a session holding n = 1
    And Mallory holds Alice's client cookie as her session cookie and Alice's session cookie as her client cookie
    When Mallory sends a request that reads the session
    Then the session is {}
    And Mallory got a new client id
    And the response sets no session cookie

  @C2
  Scenario: After a key rotation old cookies still work and are re-signed with the newest key
    Given the bridge signs with key A
    And Alice has a session holding n = 1
    And Bob has a session holding n = 1
    When the server restarts signing with key B and still accepting key A
    And Alice sends a request that reads the session
    Then the session is {"n":1}
    And the response re-signs Alice's session cookie with Max-Age=86400, HttpOnly, Secure, SameSite=Lax, Path=/
    And the response re-signs Alice's client cookie with Max-Age=31536000, HttpOnly, Secure, SameSite=Lax, Path=/
    When the server restarts signing with key B only
    And Alice sends a request that increments n
    Then n is 2
    When Bob sends a request that reads the session
    Then the session is {}
    And Bob got a new client id

  @C4
  Scenario: Among cookies with the same name, the ones that do not verify are skipped
    Given Alice has a session holding n = 1
    When a request arrives with these Cookie headers and reads the session:
      | app.sid=garbage; app.sid.cid=bad; app.sid={Alice's session cookie}; app.sid.cid={Alice's client cookie} |
      | app.sid=later; app.sid.cid=later                                                                         |
    Then the request succeeded
    And the session is {"n":1}

  @C4 @H2c
  Scenario Outline: The pair that belongs together wins, whatever the order of a tossed cookie
    Given Alice has a session holding n = 1
    And Bob has a session holding n = 7
    When a request arrives with these Cookie headers and reads the session:
      | <cookies> |
    Then the request succeeded
    And the session is {"n":1}

    Examples:
      | cookies                                                                                              |
      | app.sid.cid={Alice's client cookie}; app.sid={Bob's session cookie}; app.sid={Alice's session cookie} |
      | app.sid.cid={Alice's client cookie}; app.sid={Alice's session cookie}; app.sid={Bob's session cookie} |
      | app.sid.cid={Bob's client cookie}; app.sid.cid={Alice's client cookie}; app.sid={Alice's session cookie} |

  @C4
  Scenario: Two complete pairs that both belong together trust neither, whatever the order
    Given Alice has a session holding n = 1
    And Bob has a session holding n = 7
    When requests arrive, one with each of these Cookie headers, and read the session:
      | case               | header                                                                                                                                   |
      | Bob's pair first   | app.sid.cid={Bob's client cookie}; app.sid={Bob's session cookie}; app.sid.cid={Alice's client cookie}; app.sid={Alice's session cookie} |
      | Alice's pair first | app.sid.cid={Alice's client cookie}; app.sid={Alice's session cookie}; app.sid.cid={Bob's client cookie}; app.sid={Bob's session cookie} |
      | interleaved        | app.sid={Bob's session cookie}; app.sid.cid={Alice's client cookie}; app.sid={Alice's session cookie}; app.sid.cid={Bob's client cookie} |
    Then every one of those requests succeeded with an empty session and no session cookie

  @C6
  Scenario: Junk values of the session cookie cannot push the real one out of the candidates
    Given Alice has a session holding n = 1
    When a request arrives with these Cookie headers and reads the session:
      | app.sid=1; app.sid=2; app.sid=3; app.sid=4; app.sid=5; app.sid=6; app.sid=7; app.sid=8; app.sid=9.9; app.sid.cid={Alice's client cookie}; app.sid={Alice's session cookie} |
    Then the request succeeded
    And the session is {"n":1}

  @C4
  Scenario: Two verified values of one name that no pair ties together are both distrusted
    Given Alice has a session holding n = 1
    And Bob has a session holding n = 7
    When a request arrives with these Cookie headers and reads the session:
      | app.sid={Bob's session cookie}; app.sid={Alice's session cookie} |
    Then the request succeeded
    And the session is {}
    And the response sets no session cookie
