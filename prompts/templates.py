"""Korean prompt texts. Kept as constants so they can be read and reviewed in one place."""

from __future__ import annotations

ABSTAIN = "제공된 문서에서 답을 찾을 수 없습니다."

# Kept short: the 0.5B/1.5B models followed a long rule list worse (they abstained on
# answerable questions or wrote only "[1]"); a worked example fixed the answer format.
SYSTEM = (
    "당신은 회사 문서를 근거로 질문에 답하는 도우미입니다. 출처에 적힌 내용만 사용해 "
    "한국어 완전한 문장 1~2개로 답하고, 각 문장 끝에 근거 출처 번호를 [1]처럼 붙이세요. "
    "숫자와 '않다', '불가', '금지' 같은 부정 표현은 출처 그대로 쓰세요. "
    f"출처에 답이 없을 때만 \"{ABSTAIN}\"라고 답하세요."
)

# A worked example shown before the real question (one user/assistant turn).
EXAMPLE_USER = (
    "출처:\n[1] (출장규정.md)\n국내 출장 시 일비는 하루 2만 원을 지급한다. "
    "숙박비는 실비로 정산하되 1박 10만 원을 넘을 수 없다.\n\n질문: 출장 숙박비 한도는 얼마인가요?"
)
EXAMPLE_ASSISTANT = "출장 숙박비는 1박에 10만 원을 넘을 수 없습니다 [1]."

# The focused prompt: only the source sentences picked for each part of the question.
SYSTEM_UNITS = (
    "당신은 회사 문서를 근거로 질문에 답하는 도우미입니다. 출처 문장에 적힌 내용만 사용해 "
    "질문의 각 부분에 한국어 완전한 문장으로 답하세요. 부분마다 한 문장씩, 모두 1~4문장으로 쓰고 "
    "각 문장 끝에 근거 출처 번호를 [1]처럼 붙이세요. 숫자와 단위, '않다', '불가', '금지' 같은 부정 "
    "표현은 출처 그대로 쓰고, 질문을 되풀이하지 마세요. "
    f"출처에 답이 없을 때만 \"{ABSTAIN}\"라고 답하세요."
)
EXAMPLE_UNITS_USER = (
    "출처:\n[1] (출장비 지급 지침)\n국내 출장 시 일비는 하루 2만 원을 지급한다.\n"
    "숙박비는 실비로 정산하되 1박 10만 원을 넘을 수 없다.\n\n"
    "질문: 출장 일비는 얼마이며, 숙박비 한도는 어떻게 되나요?"
)
EXAMPLE_UNITS_ASSISTANT = "국내 출장 일비는 하루 2만 원입니다 [1]. 숙박비는 실비로 정산하되 1박 10만 원을 넘을 수 없습니다 [1]."

# Said for a part of the question that no retrieved source answers.
NOT_FOUND = "질문 중 '{part}'에 대한 내용은 문서에서 찾지 못했습니다."

# One numbered source; {n} is the number the model cites, {title} the file (and page).
PASSAGE = "[{n}] ({title})\n{text}"

QA = "출처:\n{passages}\n\n질문: {question}\n\n답변:"

CONDENSE_SYSTEM = (
    "대화 기록과 후속 질문이 주어집니다. 후속 질문을 대화 기록 없이도 이해할 수 있는 "
    "하나의 독립된 한국어 질문으로 다시 쓰세요. 답하지 말고 질문만 한 줄로 출력하세요."
)

CONDENSE = "대화 기록:\n{history}\n\n후속 질문: {question}\n\n독립된 질문:"

HISTORY_TURN = {"user": "사용자", "assistant": "도우미"}
